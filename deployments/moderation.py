"""Moderation replica: the Scanner (windows, normalisation, lexical + semantic models) and the
policy, batched across concurrent requests. It only scores or raises: what a failure means
(fail closed or open) is the Router's guard's decision.

Deployed twice by the builder, as InputModeration and OutputModeration, each with its own
replicas and user_config (thresholds, disabled categories). Where the Router scores a direction
itself (moderation.router_checks), that deployment only holds the policy: its scanner (~0.5 GiB)
is loaded on first use, not at start. InputModeration always loads it: it serves /v1/moderations.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Literal

from ray import serve

from deployments.cpu_priority import lower_priority
from services.config import ModerationRuntimeConfig, ModerationSettings
from services.moderation import CATEGORIES, load_policy
from services.moderation.base import ModerationPolicy, ModerationVerdict
from services.moderation.scan import Scanner, load_scanner

log = logging.getLogger("ray.serve")


class Moderation:
    def __init__(self, settings: ModerationSettings, direction: Literal["input", "output"] = "input"):
        lower_priority(settings.cpu_niceness)  # a check must not delay the engine's steps
        self.settings = settings
        self._scanner: Scanner | None = None
        self._load_lock = threading.Lock()
        if direction == "input" or direction not in settings.router_checks:
            self._scanner = load_scanner(settings)  # serves traffic: fail the deploy now, not a request later
        self.policy = load_policy(settings)
        for batched in (self._inputs, self._answers):
            batched.set_max_batch_size(settings.max_batch_size)
            batched.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Thresholds and disabled categories change at run time, without a restart."""
        self.settings = ModerationRuntimeConfig.model_validate(user_config).apply(self.settings)
        self.policy = load_policy(self.settings)
        log.info("moderation policy updated: %s", user_config)

    @property
    def scanner(self) -> Scanner:
        """Loaded at start, or on first use where the Router runs this direction's checks."""
        if self._scanner is None:
            with self._load_lock:  # calls arrive on worker threads
                if self._scanner is None:
                    log.info("loading the scanner on first use (the Router runs these checks itself)")
                    self._scanner = load_scanner(self.settings)
        return self._scanner

    # onnxruntime releases the GIL; a thread keeps the replica's event loop responsive.
    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _inputs(self, conversations: list[list[str]]) -> list[ModerationVerdict]:
        scores = await asyncio.to_thread(lambda: self.scanner.scan_inputs(conversations))
        return [self.policy.judge(s) for s in scores]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _answers(self, pairs: list[tuple[str, str]]) -> list[ModerationVerdict]:
        scores = await asyncio.to_thread(lambda: self.scanner.scan_answers(pairs))
        return [self.policy.judge(s) for s in scores]

    async def moderate_input(self, texts: list[str]) -> ModerationVerdict:
        """One conversation (every message), batched with other requests' conversations."""
        return await self._inputs(list(texts))

    async def moderate_output(self, request: str, texts: list[str]) -> list[ModerationVerdict]:
        """Answer windows judged against their request, batched across streams."""
        return list(await asyncio.gather(*(self._answers((request, t)) for t in texts)))

    async def moderate_many(self, texts: list[str]) -> list[ModerationVerdict]:
        """/v1/moderations: each input on its own, in one call."""
        scores = await asyncio.to_thread(lambda: self.scanner.scan_inputs([[t] for t in texts]))
        return [self.policy.judge(s) for s in scores]

    def current_policy(self) -> ModerationPolicy:
        """For a Router that scores in its own scanner process (moderation.router_checks)."""
        return self.policy

    def categories(self) -> list[str]:
        return list(CATEGORIES)
