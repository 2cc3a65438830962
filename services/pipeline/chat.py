"""The moderated chat flow (seed steps 1-7), independent of Ray and of HTTP.

  input check ──pass──► generation (already running) ──► output check per window ──pass──► answer
       │                                                        │
       └──flag──► abort generation, template ◄───────flag───────┘   (finish_reason content_filter)

Generation starts while the input check runs, hiding the check behind prefill; nothing generated
leaves the pipeline before the input check passed, and a blocked request's engine work is aborted
at once (its engine time is counted). Each of the `n` choices is its own engine request, checked
on its own. Every moderation round trip goes through the one Guard.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from services.config import AdmissionSettings, StreamingSettings
from services.generation.types import GenerationRequest
from services.observability.metrics import PipelineMetrics
from services.pipeline.choice_stream import ChoiceStream
from services.pipeline.errors import InvalidTurn
from services.pipeline.generation import PumpedGeneration
from services.pipeline.guard import CheckContext, Guard, first_flag
from services.pipeline.outcome import Block
from services.pipeline.stages import Stages
from services.pipeline.turn import Answer, Blocked, ChatTurn, Choice, Event, Usage
from services.pipeline.windows import WindowSplitter

# Called with every finished turn (feedback capture); must not raise.
AnswerHook = Callable[[ChatTurn, Answer], Awaitable[None]]


class ChatPipeline:
    def __init__(self, stages: Stages, guard: Guard, streaming: StreamingSettings, admission: AdmissionSettings,
                 metrics: PipelineMetrics, on_answer: AnswerHook | None = None):
        self.stages, self.guard, self.metrics, self.on_answer = stages, guard, metrics, on_answer
        self.streaming, self.admission = streaming, admission
        self._background: set[asyncio.Task] = set()

    def reconfigure(self, streaming: StreamingSettings) -> None:
        """Run-time change of the windows and default mode (Router user_config)."""
        self.streaming = streaming

    # -- shared start ------------------------------------------------------------------------
    def _engine_request(self, turn: ChatTurn, index: int, stream: bool) -> GenerationRequest:
        # A non-streamed answer (and a buffered stream, by default) comes in pieces of just over a
        # first window: its windows are checked while the rest is generated, with one Ray hop per
        # piece instead of per token. An async stream takes every delta.
        pieces = not stream or (turn.mode == "buffered" and self.streaming.buffered_relay == "pieces")
        chunk_chars = self.streaming.first_window_chars + 1 if pieces else 0
        return GenerationRequest(
            request_id=turn.completion_id if turn.n == 1 else f"{turn.completion_id}-{index}",
            messages=turn.engine_messages(), max_tokens=turn.max_tokens, temperature=turn.temperature,
            top_p=turn.top_p, stop=list(turn.stop),
            # n choices with one seed would be n copies of one answer
            seed=None if turn.seed is None else (turn.seed + index) % 2**63, chunk_chars=chunk_chars,
        )

    async def _start(self, turn: ChatTurn, stream: bool) -> tuple[list[PumpedGeneration], Block | None, int]:
        """Starts the n generations and the input check together. Returns the running generations
        with the input block (None: passed) and the prompt's token count. Raises InvalidTurn /
        GenerationUnavailable before anything was sent."""
        ctx = self._context(turn)
        gens = [PumpedGeneration(self.stages.generate(self._engine_request(turn, i, stream))) for i in range(turn.n)]
        try:
            block = await self.guard.check("input", turn.texts(), ctx)
            if block is not None:
                spent = await asyncio.gather(*(g.abort() for g in gens))
                self.metrics.blocked_engine_time("input", sum(spent))
                return gens, block, 0
            prompt_tokens = 0
            for gen in gens:
                first = await gen.next(self.admission.first_token_timeout_s)
                if first is None or first.error:
                    raise InvalidTurn(first.error if first else "The model returned nothing.", param="messages",
                                      code=first.error_code if first else None)
                prompt_tokens = first.prompt_tokens
            return gens, None, prompt_tokens
        except BaseException:
            await asyncio.gather(*(g.abort() for g in gens))
            raise

    def _context(self, turn: ChatTurn) -> CheckContext:
        return CheckContext(turn.completion_id, turn.languages, turn.request_text())

    def _finish(self, endpoint: str, turn: ChatTurn, answer: Answer, outcome: str, t0: float) -> None:
        self.metrics.request(endpoint, outcome, time.perf_counter() - t0)
        self.metrics.tokens(answer.completion_tokens)
        if self.on_answer is not None:
            task = asyncio.ensure_future(self.on_answer(turn, answer))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _blocked_answer(self, turn: ChatTurn, block: Block) -> Answer:
        return Answer(turn.completion_id, [Choice(i, block.template.text, "content_filter", block) for i in range(turn.n)])

    # -- one finished answer -----------------------------------------------------------------
    async def complete(self, turn: ChatTurn) -> Answer:
        t0 = time.perf_counter()
        try:
            gens, block, prompt_tokens = await self._start(turn, stream=False)
        except Exception as exc:
            self.metrics.request("chat", _failure_outcome(exc), time.perf_counter() - t0)
            raise
        if block is not None:
            answer = self._blocked_answer(turn, block)
            self._finish("chat", turn, answer, answer.outcome, t0)
            return answer
        try:
            choices = await asyncio.gather(*(self._complete_choice(turn, i, g) for i, g in enumerate(gens)))
        except BaseException as exc:
            await asyncio.gather(*(g.abort() for g in gens))
            self.metrics.request("chat", _failure_outcome(exc), time.perf_counter() - t0)
            raise
        answer = Answer(turn.completion_id, list(choices), prompt_tokens)
        self._finish("chat", turn, answer, answer.outcome, t0)
        return answer

    async def _complete_choice(self, turn: ChatTurn, index: int, gen: PumpedGeneration) -> Choice:
        """Each window is checked as soon as it is complete, alongside the generation of the rest,
        so only the last window's check is paid after the answer ends; a flag stops the engine."""
        t_gen = time.perf_counter()
        ctx, splitter = self._context(turn), WindowSplitter(self.streaming)
        checks: list[asyncio.Future] = []  # in window order
        finish_reason, tokens = "stop", 0
        try:
            # No first-token timeout here: the client waits for the whole answer anyway.
            while (step := await gen.next()) is not None:
                splitter.add(step.text)
                tokens = step.completion_tokens or tokens
                finish_reason = step.finish_reason or finish_reason
                while (window := splitter.next_window()) is not None:
                    checks.append(self.guard.check_window(window, ctx))
                if (block := first_flag(checks)) is not None:
                    self.metrics.blocked_engine_time("output", await gen.abort())
                    return Choice(index, block.template.text, "content_filter", block, tokens)
            self.metrics.stage("generation", time.perf_counter() - t_gen)
            if (window := splitter.next_window(final=True)) is not None:
                checks.append(self.guard.check_window(window, ctx))
            block = next((b for b in await asyncio.gather(*checks) if b is not None), None)
        finally:
            for check in checks:
                check.cancel()
        if block is not None:
            return Choice(index, block.template.text, "content_filter", block, tokens)
        return Choice(index, splitter.answer, finish_reason, None, tokens)

    # -- streamed ------------------------------------------------------------------------------
    async def stream(self, turn: ChatTurn) -> AsyncIterator[Event]:
        """Events of one answer (all choices interleaved), then Usage. Errors that must become a
        4xx/503 are raised here, before the first event."""
        t0 = time.perf_counter()
        try:
            gens, block, prompt_tokens = await self._start(turn, stream=True)
        except Exception as exc:
            self.metrics.request("chat_stream", _failure_outcome(exc), time.perf_counter() - t0)
            raise
        if block is not None:
            return self._blocked_stream(turn, block, t0)
        runs = [ChoiceStream(i, g, turn.mode, self._context(turn), self.guard, self.streaming, self.admission,
                             self.metrics, t0) for i, g in enumerate(gens)]
        return self._answer_stream(turn, runs, prompt_tokens, t0)

    async def _blocked_stream(self, turn: ChatTurn, block: Block, t0: float) -> AsyncIterator[Event]:
        answer = self._blocked_answer(turn, block)
        for choice in answer.choices:
            yield Blocked(choice.index, block, text_sent=False)
        yield Usage(0, 0)
        self._finish("chat_stream", turn, answer, answer.outcome, t0)

    async def _answer_stream(self, turn: ChatTurn, runs: list[ChoiceStream], prompt_tokens: int, t0: float) -> AsyncIterator[Event]:
        ended = False
        try:
            async with contextlib.aclosing(_merged([r.events() for r in runs])) as events:
                async for event in events:
                    yield event
            ended = True
            yield Usage(prompt_tokens, sum(r.completion_tokens for r in runs))
        finally:
            choices = [r.result or Choice(r.index, r.sent, "aborted", None, r.completion_tokens) for r in runs]
            answer = Answer(turn.completion_id, choices, prompt_tokens)
            if not ended:
                outcome = "client_disconnected"
            elif any(c.finish_reason == "error" for c in choices):
                outcome = "error"
            else:
                outcome = answer.outcome
            self._finish("chat_stream", turn, answer, outcome, t0)


def _failure_outcome(exc: BaseException) -> str:
    return "invalid_request" if isinstance(exc, InvalidTurn) else "error"


async def _merged(streams: list[AsyncIterator[Event]]) -> AsyncIterator[Event]:
    """Events of several choices as they come (one stream: passed straight through)."""
    if len(streams) == 1:
        async with contextlib.aclosing(streams[0]) as only:
            async for event in only:
                yield event
        return
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(s: AsyncIterator[Event]) -> None:
        try:
            async for event in s:
                queue.put_nowait(event)
        finally:
            queue.put_nowait(done)

    tasks = [asyncio.ensure_future(pump(s)) for s in streams]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is done:
                remaining -= 1
            else:
                yield item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks)
