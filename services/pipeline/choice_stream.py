"""One streamed choice under output moderation: windows, hold-back, verdicts, abort.

buffered: a window's text is released only after its check passed, so the client never receives
          flagged text; the first window is short, so the stream starts after one quick check.
async:    text is released at once and windows are checked alongside; a flag ends the stream
          with the flagged span named (the client must retract what it showed).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from services.config import AdmissionSettings, StreamingSettings
from services.generation.types import GenerationStep
from services.observability.metrics import PipelineMetrics
from services.pipeline.errors import GenerationUnavailable
from services.pipeline.generation import PumpedGeneration
from services.pipeline.guard import CheckContext, Guard, first_flag
from services.pipeline.outcome import Block
from services.pipeline.turn import Blocked, Choice, Delta, Event, Failed, Finished, StreamMode
from services.pipeline.windows import Window, WindowSplitter


def _joined(steps: list[GenerationStep]) -> GenerationStep:
    if len(steps) == 1:
        return steps[0]
    last = steps[-1]
    return GenerationStep(text="".join(s.text for s in steps), completion_tokens=last.completion_tokens,
                          finish_reason=next((s.finish_reason for s in reversed(steps) if s.finish_reason), None))


class ChoiceStream:
    def __init__(self, index: int, generation: PumpedGeneration, mode: StreamMode, ctx: CheckContext, guard: Guard,
                 streaming: StreamingSettings, admission: AdmissionSettings, metrics: PipelineMetrics, t0: float):
        self.index, self.gen, self.mode, self.ctx, self.guard = index, generation, mode, ctx, guard
        self.streaming, self.admission, self.metrics, self.t0 = streaming, admission, metrics, t0
        self.sent = ""  # what the client received of the answer
        self.completion_tokens = 0
        self.result: Choice | None = None  # set when the stream ends (for the answer record)
        self._last_sent: float | None = None
        self._arrivals: list[tuple[int, float]] = []  # (answer offset, time) for the hold-back metric

    def _delta(self, text: str) -> Delta:
        now = time.perf_counter()
        if self._last_sent is None:
            self.metrics.ttft(self.mode, now - self.t0)
        else:
            self.metrics.inter_token(self.mode, now - self._last_sent)
        self._last_sent = now
        self.sent += text
        return Delta(self.index, text)

    def _release(self, window: Window) -> Delta:
        now = time.perf_counter()
        born = next((t for off, t in self._arrivals if off > window.new_start), now)
        self.metrics.holdback(now - born)
        self._arrivals = [(o, t) for o, t in self._arrivals if o > window.end]
        return self._delta(window.text[window.new_start - window.start:])

    async def _take(self, window: Window, checks: list[asyncio.Future]) -> tuple[Block | None, Delta | None]:
        """Buffered: check the window now and release its text if it passed. Async: its text is
        already out; check it alongside."""
        if self.mode == "async":
            checks.append(self.guard.check_window(window, self.ctx))
            return None, None
        block = await self.guard.check_window(window, self.ctx)
        return block, None if block is not None else self._release(window)

    async def events(self) -> AsyncIterator[Event]:
        splitter = WindowSplitter(self.streaming)
        checks: list[asyncio.Future] = []  # async mode: checks in flight, in window order
        block: Block | None = None
        finish_reason = "stop"
        timeout: float | None = self.admission.first_token_timeout_s
        try:
            while block is None and (step := await self.gen.next(timeout)) is not None:
                step = _joined([step, *self.gen.ready()])  # several tokens per event when the engine ran ahead
                self.completion_tokens = step.completion_tokens or self.completion_tokens
                finish_reason = step.finish_reason or finish_reason
                if not step.text:
                    continue
                timeout = None  # the engine is answering; later gaps are bounded by max_tokens
                splitter.add(step.text)
                self._arrivals.append((len(splitter.answer), time.perf_counter()))
                if self.mode == "async":
                    yield self._delta(step.text)
                while block is None and (window := splitter.next_window()) is not None:
                    block, delta = await self._take(window, checks)
                    if delta is not None:
                        yield delta
                if block is None and self.mode == "async":
                    block = self._first_flag(checks)
            if block is None and (window := splitter.next_window(final=True)) is not None:
                block, delta = await self._take(window, checks)
                if delta is not None:
                    yield delta
            if block is None and checks:
                await asyncio.wait(checks)
                block = self._first_flag(checks)
            if block is not None:
                if not self.gen.finished:  # stopped early: count the engine time it had used
                    self.metrics.blocked_engine_time("output", await self.gen.abort())
                self.result = Choice(self.index, block.template.text, "content_filter", block, self.completion_tokens)
                yield Blocked(self.index, block, text_sent=bool(self.sent))
            else:
                self.result = Choice(self.index, self.sent, finish_reason, None, self.completion_tokens)
                yield Finished(self.index, finish_reason)
        except GenerationUnavailable as exc:
            self.result = Choice(self.index, self.sent, "error", None, self.completion_tokens)
            yield Failed(self.index, exc.message)
        finally:
            for task in checks:
                task.cancel()
            await self.gen.abort()  # client gone or error: vLLM frees the request at once

    @staticmethod
    def _first_flag(checks: list[asyncio.Future]) -> Block | None:
        """The earliest flagged window among finished checks; drops the passed ones."""
        if (block := first_flag(checks)) is None:
            checks[:] = [t for t in checks if not t.done()]
        return block
