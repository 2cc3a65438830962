"""How late an event loop runs what is ready: a task sleeps `interval_s` and records how much later
than asked it woke. On the Router one loop relays every token, starts every request and awaits every
check, so this lag is a delay each of them saw (chatgate_event_loop_lag_seconds; the bench prints it)."""
from __future__ import annotations

import asyncio

from services.observability.metrics import PipelineMetrics


class LoopLagMonitor:
    def __init__(self, metrics: PipelineMetrics, interval_s: float = 0.05):
        self.metrics, self.interval_s = metrics, interval_s
        self._task: asyncio.Task | None = None

    def ensure_started(self) -> None:
        """Called from inside the loop to watch (the first request starts it; cheap after that)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.metrics.loop_lag(max(0.0, loop.time() - asked))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
