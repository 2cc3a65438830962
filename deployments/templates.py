"""TemplateResponder replica: template texts from Redis (any language Redis holds)."""
from __future__ import annotations

import logging
from typing import Any

from services.config import TemplateRuntimeConfig, TemplateSettings
from services.templates.store import Template, TemplateStore

log = logging.getLogger("ray.serve")


class TemplateResponder:
    async def __init__(self, settings: TemplateSettings):
        self.store = TemplateStore(settings)
        self._filled = False
        # Install the built-in texts Redis lacks at start; a Redis that is down must not fail the
        # replica: the first `get` tries again.
        await self._fill_once()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.store.settings = TemplateRuntimeConfig.model_validate(user_config).apply(self.store.settings)

    async def _fill_once(self) -> None:
        if self._filled:
            return
        try:
            added = await self.store.fill_missing()
            self._filled = True
            log.info("added %d built-in templates to Redis", added)
        except Exception as exc:  # noqa: BLE001 - retried on the next get
            log.warning("built-in templates not added, Redis unavailable: %s", exc)

    async def get(self, category: str, languages: list[str]) -> Template:
        """Raises TemplatesUnavailable when Redis is down: the Router's guard serves a built-in text."""
        await self._fill_once()
        return await self.store.get(category, languages)

    async def redis_ok(self) -> bool:
        return await self.store.ping()
