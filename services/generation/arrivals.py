"""Arrival batching: requests that arrive together enter the engine together.

Each engine step that prefills new prompts stalls every stream already decoding for the length of
that step. A burst that reaches the engine spread over a few hundred milliseconds (32 requests
through the Router) otherwise starts a few streams, then stalls them with one or more large
prefill steps of the rest: a pause of 0.3-1 s in answers that had started (the c=8 and c=32
inter-token tail, docs/benchmark.md experiments E and F). Bare vLLM gets such a burst before its
first step, so nothing is decoding yet.

The rule (the idea of vLLM V0's `scheduler_delay_factor`, applied to arrivals): a request that
arrives within `quiet_s` of the previous one, while the engine has work, waits until arrivals have
been quiet for `quiet_s` (at most `max_s` after the first of them); then all that waited enter at
once. A request that arrives alone (nothing in the last `quiet_s`) enters at once, so a lone
request, or one of a steady trickle, pays nothing.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ArrivalBatcher:
    def __init__(self, quiet_s: float, max_s: float, clock: Callable[[], float] = time.monotonic):
        self.quiet_s, self.max_s, self._clock = quiet_s, max_s, clock
        self._gate: asyncio.Event | None = None  # the batch now waiting, if any
        self._releaser: asyncio.Task | None = None
        self._opened = 0.0
        self._last = -1e9  # the previous arrival, batched or not
        self.held = 0  # requests that waited
        self.held_seconds = 0.0
        self.batches = 0

    @property
    def enabled(self) -> bool:
        return self.quiet_s > 0 and self.max_s > 0

    async def admit(self, engine_busy: bool) -> float:
        """Wait for this request's turn to enter the engine; returns the seconds waited."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        previous, self._last = self._last, now
        if self._gate is None:
            if not engine_busy or now - previous >= self.quiet_s:
                return 0.0  # alone: nobody to gather
            self._gate, self._opened = asyncio.Event(), now
            self.batches += 1
            # kept in an attribute: the event loop holds tasks only weakly
            self._releaser = asyncio.get_running_loop().create_task(self._release(self._gate))
        await self._gate.wait()
        waited = self._clock() - now
        self.held += 1
        self.held_seconds += waited
        return waited

    async def _release(self, gate: asyncio.Event) -> None:
        while True:
            due = min(self._last + self.quiet_s, self._opened + self.max_s)
            wait = due - self._clock()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._gate = None  # later arrivals open the next batch
        gate.set()
