"""Template storage in Redis (a hash per language: category -> text).

Replicas read through a short in-memory cache, so `chatgate templates set` reaches them within
`cache_ttl_s` without a restart. Any language Redis holds can be chosen, including ones added at
run time. If Redis is unreachable `get` raises: the pipeline's guard is the one place that falls
back to the built-in texts of templates.yaml (`builtin_template`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import redis.asyncio as aioredis
import yaml
from redis.exceptions import RedisError

from services.config import TemplateSettings

DEFAULT_CATEGORY = "default"


@dataclass(frozen=True)
class Template:
    text: str
    category: str  # the template's own category (may be "default" after fallback)
    language: str
    source: str  # "redis" or "builtin"


def base_category(category: str) -> str:
    """'harassment/threatening' -> 'harassment': templates are kept per top-level category."""
    return category.split("/", 1)[0]


class TemplatesUnavailable(RuntimeError):
    """Redis could not be read; the caller serves a built-in text."""


@lru_cache(maxsize=4)
def _parse_builtin(path: str) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return {str(lang): {str(c): str(t) for c, t in cats.items()} for lang, cats in data.items()}


def load_builtin(path: Path) -> dict[str, dict[str, str]]:
    """The built-in template texts (templates.yaml, parsed once per process)."""
    return {lang: dict(cats) for lang, cats in _parse_builtin(str(path)).items()}


def languages_of(languages: str | list[str]) -> list[str]:
    """Preferences as given ("de-AT" also tries "de"), best first, without repeats."""
    prefs = [languages] if isinstance(languages, str) else list(languages)
    out: list[str] = []
    for tag in prefs:
        tag = tag.strip().lower()
        out += [tag, tag.split("-")[0]] if tag else []
    return list(dict.fromkeys(out))


def _lookup_order(category: str, languages: str | list[str], default_language: str) -> list[tuple[str, str]]:
    """Per language: the sub-category's own text if there is one ('harassment/threatening': a
    threat is not an insult), its top-level category's, then the language's default."""
    cat = base_category(category)
    order = []
    for lang in languages_of(languages) + [default_language]:
        order += [(lang, category), (lang, cat), (lang, DEFAULT_CATEGORY)]
    return list(dict.fromkeys(order))


def builtin_template(builtin: dict[str, dict[str, str]], category: str, languages: str | list[str],
                     default_language: str) -> Template:
    """The best built-in text for (category, languages): what is served when Redis is unusable."""
    for lang, cat in _lookup_order(category, languages, default_language):
        text = builtin.get(lang, {}).get(cat)
        if text:
            return Template(text, cat, lang, "builtin")
    return Template("I can't help with that.", DEFAULT_CATEGORY, "en", "builtin")


class TemplateStore:
    def __init__(self, settings: TemplateSettings, client: aioredis.Redis | None = None):
        self.settings = settings
        self.builtin = load_builtin(settings.builtin_file)
        self._redis = client or aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
            decode_responses=True,
        )
        self._cache: dict[str, dict[str, str]] = {}
        self._cache_at: dict[str, float] = {}

    def _key(self, language: str) -> str:
        return f"{self.settings.key_prefix}:{language}"

    @property
    def languages(self) -> set[str]:
        return set(self.builtin) | set(self._cache)

    async def fill_missing(self) -> int:
        """Write the built-in texts that Redis does not have yet (never overwrites an edit);
        returns how many were added."""
        added = 0
        for language, texts in self.builtin.items():
            for category, text in texts.items():
                added += int(await self._redis.hsetnx(self._key(language), category, text))
        return added

    async def _language_texts(self, language: str) -> dict[str, str]:
        now = time.monotonic()
        if now - self._cache_at.get(language, -1e9) < self.settings.cache_ttl_s:
            return self._cache[language]
        texts = await self._redis.hgetall(self._key(language))
        self._cache[language], self._cache_at[language] = texts, now
        return texts

    async def get(self, category: str, languages: str | list[str]) -> Template:
        """The best template for the category in the first preferred language Redis has
        (any language, built in or added later), else the default language."""
        order = _lookup_order(category, languages, self.settings.default_language)
        try:
            for lang, cat in order:
                text = (await self._language_texts(lang)).get(cat)
                if text:
                    return Template(text, cat, lang, "redis")
        except (RedisError, OSError) as exc:
            raise TemplatesUnavailable(str(exc)) from exc
        # Redis answers but holds nothing usable (e.g. flushed): the built-in texts still apply.
        return builtin_template(self.builtin, category, languages, self.settings.default_language)

    async def set(self, category: str, language: str, text: str) -> None:
        await self._redis.hset(self._key(language), category, text)

    async def delete(self, category: str, language: str) -> int:
        return int(await self._redis.hdel(self._key(language), category))

    async def all(self) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        async for key in self._redis.scan_iter(match=f"{self.settings.key_prefix}:*"):
            result[key.rsplit(":", 1)[1]] = await self._redis.hgetall(key)
        return result

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()
