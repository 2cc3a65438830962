"""Template storage in Redis (a hash per language: category -> text).

Replicas read through a short in-memory cache, so `chatgate templates set` reaches them within
`cache_ttl_s` without a restart. If Redis is unreachable the seed file's built-in texts are
served and the fallback is reported to the caller (counted in a metric) instead of failing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
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


def load_seed(path: Path) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(lang): {str(c): str(t) for c, t in cats.items()} for lang, cats in data.items()}


def _lookup_order(category: str, language: str, default_language: str) -> list[tuple[str, str]]:
    cat = base_category(category)
    order = [(language, cat), (language, DEFAULT_CATEGORY), (default_language, cat), (default_language, DEFAULT_CATEGORY)]
    return list(dict.fromkeys(order))


def builtin_template(builtin: dict[str, dict[str, str]], category: str, language: str, default_language: str) -> Template:
    """The best seed-file text for (category, language): what is served when Redis is unusable."""
    for lang, cat in _lookup_order(category, language, default_language):
        text = builtin.get(lang, {}).get(cat)
        if text:
            return Template(text, cat, lang, "builtin")
    return Template("I can't help with that.", DEFAULT_CATEGORY, "en", "builtin")


class TemplateStore:
    def __init__(self, settings: TemplateSettings, client: aioredis.Redis | None = None):
        self.settings = settings
        self.builtin = load_seed(settings.seed_file)
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

    async def seed(self) -> int:
        """Write seed texts that Redis does not have yet; returns how many were added."""
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

    async def get(self, category: str, language: str) -> Template:
        """The best template for (category, language); never raises for Redis trouble."""
        order = _lookup_order(category, language, self.settings.default_language)
        try:
            for lang, cat in order:
                text = (await self._language_texts(lang)).get(cat)
                if text:
                    return Template(text, cat, lang, "redis")
        except (RedisError, OSError):
            pass  # fall through to built-in texts
        return self.builtin_template(category, language)

    def builtin_template(self, category: str, language: str) -> Template:
        return builtin_template(self.builtin, category, language, self.settings.default_language)

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
