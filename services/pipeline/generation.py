"""One choice's engine request, pumped from the moment it starts.

The pump keeps pulling steps into a queue, so generation runs ahead of moderation checks
(and of the input check, which it overlaps with prefill) instead of stalling on them.
Cancelling the pump closes the step iterator, which aborts the engine request.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from services.generation.types import GenerationStep
from services.pipeline.errors import GenerationUnavailable

_END = object()


class PumpedGeneration:
    def __init__(self, steps: AsyncIterator[GenerationStep]):
        self.started = time.perf_counter()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.ensure_future(self._pump(steps))

    async def _pump(self, steps: AsyncIterator[GenerationStep]) -> None:
        try:
            async for step in steps:
                self._queue.put_nowait(step)
            self._queue.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the engine failed: the reader sees it in order
            self._queue.put_nowait(exc)

    async def next(self, timeout: float | None = None) -> GenerationStep | None:
        """The next step, None at the end; engine failures and timeouts raise GenerationUnavailable."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError as exc:
            raise GenerationUnavailable("The model did not start answering in time. Please retry.") from exc
        if item is _END:
            return None
        if isinstance(item, Exception):
            raise GenerationUnavailable() from item
        return item

    def ready(self) -> list[GenerationStep]:
        """The steps already waiting, without waiting (the engine ran ahead of the reader): the
        caller sends them as one event instead of one per token. Ends and errors stay queued."""
        steps = []
        while not self._queue.empty():
            item = self._queue._queue[0]  # peek: an end marker or error is left for next()
            if item is _END or isinstance(item, Exception):
                break
            steps.append(self._queue.get_nowait())
        return steps

    @property
    def finished(self) -> bool:
        return self._task.done()

    async def abort(self) -> float:
        """Stop the engine request (no-op when it already ended); returns its engine seconds."""
        if not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])  # the pump's own exception is not ours to raise
        return time.perf_counter() - self.started
