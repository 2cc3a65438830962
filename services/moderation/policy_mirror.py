"""A copy of another component's moderation policy, kept fresh in the background.

The moderation deployments own the policy (thresholds and disabled categories change at run time
through their user_config); a caller that scores text itself (the Router's scanner process) judges
with their policy, re-read at most every `refresh_s`. The first read is awaited: until a policy
was read once, a check raises (and the guard fails it closed). A failed refresh keeps the last one.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from services.moderation.base import ModerationPolicy

log = logging.getLogger("chatgate.moderation")


class PolicyMirror:
    def __init__(self, fetch: Callable[[], Awaitable[ModerationPolicy]], refresh_s: float = 2.0):
        self._fetch, self.refresh_s = fetch, refresh_s
        self._policy: ModerationPolicy | None = None
        self._read_at = 0.0
        self._refresh: asyncio.Task | None = None

    async def get(self) -> ModerationPolicy:
        if self._policy is None:
            self._policy, self._read_at = await self._fetch(), time.monotonic()
        elif time.monotonic() - self._read_at > self.refresh_s and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.ensure_future(self._update())
        return self._policy

    async def _update(self) -> None:
        try:
            self._policy = await self._fetch()
        except Exception as exc:  # noqa: BLE001 - the last policy stays in force
            log.warning("moderation policy not re-read (%r); keeping the last one", exc)
        self._read_at = time.monotonic()
