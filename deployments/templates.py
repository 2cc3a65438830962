"""TemplateResponder replica: template texts from Redis, with built-in fallbacks."""
from __future__ import annotations

import logging
from typing import Any

from services.config import load_settings
from services.templates.store import Template, TemplateStore

log = logging.getLogger("ray.serve")


class TemplateResponder:
    def __init__(self, settings: dict[str, Any] | None = None):
        self.store = TemplateStore(load_settings(settings).templates)
        self._seeded = False

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.store.settings = self.store.settings.model_copy(update=user_config)

    async def _seed_once(self) -> None:
        # Seed lazily (not in __init__): a Redis that is down at start must not fail the replica.
        if not self._seeded:
            try:
                added = await self.store.seed()
                self._seeded = True
                log.info("seeded %d templates into Redis", added)
            except Exception as exc:  # noqa: BLE001 - Redis trouble means built-in fallback
                log.warning("template seed skipped, Redis unavailable: %s", exc)

    async def get(self, category: str, language: str) -> Template:
        await self._seed_once()
        return await self.store.get(category, language)

    def languages(self) -> list[str]:
        return sorted(self.store.builtin)

    async def redis_ok(self) -> bool:
        return await self.store.ping()
