"""Admission control: a bounded number of chat completions in progress and a bounded, short
queue in front of them. Beyond either bound a request gets a fast 429 with Retry-After instead
of waiting minutes (a client that times out and retries would double the load)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.api.errors import APIError
from services.config import AdmissionSettings
from services.observability.metrics import PipelineMetrics


class Overloaded(APIError):
    def __init__(self, retry_after_s: int, reason: str):
        super().__init__(429, "chatgate is at capacity; retry after a short wait.", code="rate_limit_exceeded")
        self.headers = {"Retry-After": str(retry_after_s)}
        self.reason = reason


class Admission:
    def __init__(self, settings: AdmissionSettings, metrics: PipelineMetrics):
        self.settings, self.metrics = settings, metrics
        self._slots = asyncio.Semaphore(settings.max_active)
        self.active = 0
        self.waiting = 0

    def _reject(self, reason: str) -> Overloaded:
        self.metrics.admission_rejected(reason)
        return Overloaded(self.settings.retry_after_s, reason)

    async def acquire(self) -> None:
        if self._slots.locked() and self.waiting >= self.settings.max_waiting:
            raise self._reject("full")
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.settings.max_wait_s)
        except asyncio.TimeoutError:
            raise self._reject("wait_budget") from None
        finally:
            self.waiting -= 1
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        self._slots.release()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
