"""The moderated chat flow (seed steps 1-7), independent of Ray.

  input check --pass--> generate --> output check (per window) --pass--> answer
       |                                   |
       +--flag--> template <------flag-----+   (finish_reason "content_filter")

A moderation check that cannot run fails closed (treated as flagged) unless `fail_open`.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from services.api import responses
from services.api.errors import APIError, error_body
from services.api.schemas import ChatCompletionRequest
from services.config import Settings, StreamingSettings
from services.generation.types import GenerationRequest, GenerationStep
from services.moderation.base import ModerationVerdict, failed_closed_verdict, failed_open_verdict
from services.observability.metrics import PipelineMetrics
from services.pipeline.outcome import Block, Stage
from services.pipeline.stages import Stages
from services.pipeline.windows import Window, WindowSplitter
from services.templates.store import builtin_template, load_seed

# (stage, verdict, request_id, text, template or None) -> audit; must not raise.
DecisionHook = Callable[[Stage, ModerationVerdict, str, str, Any], Awaitable[None]]


class GenerationUnavailable(APIError):
    def __init__(self) -> None:
        super().__init__(503, "The model is temporarily unavailable. Please retry.", code="generator_unavailable")


_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,96}")


def new_request_id(client_id: str | None = None) -> str:
    """`chatcmpl-<X-Request-ID>` when the caller sent a usable one (jobs do), so audit rows
    can be matched to the caller's own ids; otherwise a random id."""
    if client_id and _CLIENT_ID.fullmatch(client_id):
        return f"chatcmpl-{client_id}"
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatPipeline:
    def __init__(self, stages: Stages, settings: Settings, metrics: PipelineMetrics, on_decision: DecisionHook | None = None):
        self.stages = stages
        self.settings = settings
        self.metrics = metrics
        self.on_decision = on_decision
        self._background: set[asyncio.Task] = set()
        # Used when the template stage itself is unreachable: a block must still answer.
        self._builtin_templates = load_seed(settings.templates.seed_file)

    # -- helpers ---------------------------------------------------------------------------
    def _generation_request(self, req: ChatCompletionRequest, request_id: str) -> GenerationRequest:
        gen = self.settings.generator
        max_tokens = req.requested_max_tokens() or gen.default_max_tokens
        if max_tokens > gen.max_tokens_limit:
            raise APIError(400, f"max_tokens must be at most {gen.max_tokens_limit}", param="max_tokens", code="invalid_value")
        return GenerationRequest(
            request_id=request_id,
            messages=[{"role": "system" if m.role == "developer" else m.role, "content": m.text} for m in req.messages],
            max_tokens=max_tokens,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            stop=req.stop_list(),
            seed=req.seed,
            stream=req.stream,
        )

    def _fire(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _check_many(self, stage: Stage, texts: list[str], request_id: str) -> list[ModerationVerdict]:
        """One moderation round trip for `texts` (one hop even for many output windows)."""
        t0 = time.perf_counter()
        try:
            if stage == "input":
                verdicts = [await self.stages.check_input(text) for text in texts]
            elif len(texts) == 1:
                verdicts = [await self.stages.check_output(texts[0])]  # batched with other requests
            else:
                verdicts = await self.stages.check_outputs(texts)
        except Exception:
            self.metrics.moderation_failure(stage)
            if self.settings.moderation.fail_open:  # let the text through, but it was counted
                return [failed_open_verdict() for _ in texts]
            return [failed_closed_verdict(()) for _ in texts]
        finally:
            self.metrics.stage(f"{stage}_moderation", time.perf_counter() - t0)
        for text, verdict in zip(texts, verdicts):
            self.metrics.flags(stage, verdict.flagged_categories)
            if self.on_decision is not None and not verdict.flagged and self.settings.audit.sample_pass_rate > 0:
                self._fire(self.on_decision(stage, verdict, request_id, text, None))
        return verdicts

    async def _check(self, stage: Stage, text: str, request_id: str) -> ModerationVerdict:
        return (await self._check_many(stage, [text], request_id))[0]

    async def _block(self, stage: Stage, verdict: ModerationVerdict, language: str, request_id: str, text: str, window: Window | None = None) -> Block:
        t0 = time.perf_counter()
        category = verdict.top_category() or "default"
        try:
            template = await self.stages.template(category, language)
        except Exception:
            template = builtin_template(self._builtin_templates, category, language, self.settings.templates.default_language)
        self.metrics.stage("template", time.perf_counter() - t0)
        if template.source != "redis":
            self.metrics.template_fallback()
        if self.on_decision is not None:
            self._fire(self.on_decision(stage, verdict, request_id, text, template))
        return Block(stage, verdict, template, window)

    def _finish(self, endpoint: str, outcome: str, t0: float, completion_tokens: int = 0) -> None:
        self.metrics.request(endpoint, outcome, time.perf_counter() - t0)
        self.metrics.tokens(completion_tokens)

    # -- non-streaming ---------------------------------------------------------------------
    async def complete(self, req: ChatCompletionRequest, language: str, model: str, client_id: str | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        request_id = new_request_id(client_id)
        gen_req = self._generation_request(req, request_id)
        user_text = req.user_text()
        verdict = await self._check("input", user_text, request_id)
        if verdict.flagged:
            block = await self._block("input", verdict, language, request_id, user_text)
            self._finish("chat", block.outcome, t0)
            return responses.completion(
                request_id=request_id, model=model, content=block.template.text, finish_reason="content_filter",
                prompt_tokens=0, completion_tokens=0, moderation=block.report(),
            )
        t_gen = time.perf_counter()
        text, first, last = "", GenerationStep(), GenerationStep()
        try:
            async for step in self.stages.generate(gen_req):
                if step.error:
                    self._finish("chat", "invalid_request", t0)
                    raise APIError(400, step.error, param="messages", code=step.error_code)
                if step.prompt_tokens:
                    first = step
                text += step.text
                last = step
        except APIError:
            raise
        except Exception as exc:
            self._finish("chat", "error", t0)
            raise GenerationUnavailable() from exc
        self.metrics.stage("generation", time.perf_counter() - t_gen)
        splitter = WindowSplitter(self.settings.streaming)
        splitter.add(text)
        windows = splitter.all_windows()
        verdicts = await self._check_many("output", [w.text for w in windows], request_id) if windows else []
        for window, v in zip(windows, verdicts):
            if v.flagged:
                block = await self._block("output", v, language, request_id, window.text, window)
                self._finish("chat", block.outcome, t0, last.completion_tokens)
                return responses.completion(
                    request_id=request_id, model=model, content=block.template.text, finish_reason="content_filter",
                    prompt_tokens=first.prompt_tokens, completion_tokens=last.completion_tokens, moderation=block.report(),
                )
        self._finish("chat", "answered", t0, last.completion_tokens)
        return responses.completion(
            request_id=request_id, model=model, content=text, finish_reason=last.finish_reason or "stop",
            prompt_tokens=first.prompt_tokens, completion_tokens=last.completion_tokens,
        )

    # -- streaming -------------------------------------------------------------------------
    async def stream(self, req: ChatCompletionRequest, language: str, model: str, client_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Chunks of one SSE stream. Errors that must become a 4xx are raised before the first chunk."""
        run = _StreamRun(self, req, language, model, new_request_id(client_id))
        return await run.start()


class _StreamRun:
    """State of one streamed answer: hold-back windows, pending checks, client-side timings."""

    def __init__(self, pipeline: ChatPipeline, req: ChatCompletionRequest, language: str, model: str, request_id: str):
        self.p = pipeline
        self.req, self.language = req, language
        self.mode = req.moderation_mode or pipeline.settings.streaming.mode
        self.t0 = time.perf_counter()
        self.request_id = request_id
        self.chunks = responses.ChunkFactory(self.request_id, model)
        self.include_usage = bool(req.stream_options and req.stream_options.include_usage)
        self.prompt_tokens = self.completion_tokens = 0
        self._last_sent: float | None = None
        self._arrivals: list[tuple[int, float]] = []  # (answer offset, time) for hold-back delay

    async def start(self) -> AsyncIterator[dict[str, Any]]:
        gen_req = self.p._generation_request(self.req, self.request_id)
        user_text = self.req.user_text()
        verdict = await self.p._check("input", user_text, self.request_id)
        if verdict.flagged:
            block = await self.p._block("input", verdict, self.language, self.request_id, user_text)
            return self._template_stream(block)
        steps = self.p.stages.generate(gen_req)
        try:
            first = await anext(steps)
        except Exception as exc:
            self.p._finish("chat_stream", "error", self.t0)
            raise GenerationUnavailable() from exc
        if first.error:
            await steps.aclose()
            self.p._finish("chat_stream", "invalid_request", self.t0)
            raise APIError(400, first.error, param="messages", code=first.error_code)
        self.prompt_tokens = first.prompt_tokens
        return self._answer_stream(steps, first)

    def _content(self, text: str) -> dict[str, Any]:
        now = time.perf_counter()
        if self._last_sent is None:
            self.p.metrics.ttft(self.mode, now - self.t0)
        else:
            self.p.metrics.inter_token(self.mode, now - self._last_sent)
        self._last_sent = now
        return self.chunks.content(text)

    def _release(self, window: Window) -> dict[str, Any]:
        now = time.perf_counter()
        born = next((t for off, t in self._arrivals if off > window.new_start), now)
        self.p.metrics.holdback(now - born)
        self._arrivals = [(o, t) for o, t in self._arrivals if o > window.end]
        return self._content(window.text[window.new_start - window.start :])

    async def _tail(self, block: Block | None, finish_reason: str) -> AsyncIterator[dict[str, Any]]:
        if block is not None:
            yield self._content(("\n\n" if self._last_sent else "") + block.template.text)
            yield self.chunks.finish("content_filter", block.report())
        else:
            yield self.chunks.finish(finish_reason)
        if self.include_usage:
            yield self.chunks.usage(self.prompt_tokens, self.completion_tokens)
        outcome = block.outcome if block else "answered"
        self.p._finish("chat_stream", outcome, self.t0, self.completion_tokens)

    async def _template_stream(self, block: Block) -> AsyncIterator[dict[str, Any]]:
        yield self.chunks.role()
        async for chunk in self._tail(block, "content_filter"):
            yield chunk

    async def _answer_stream(self, steps: AsyncIterator[GenerationStep], first: GenerationStep) -> AsyncIterator[dict[str, Any]]:
        settings: StreamingSettings = self.p.settings.streaming
        splitter = WindowSplitter(settings)
        checks: list[tuple[Window, asyncio.Task]] = []
        block: Block | None = None
        finish_reason = "stop"
        t_gen = time.perf_counter()
        completed = False
        try:
            yield self.chunks.role()
            async for step in steps:
                self.completion_tokens = step.completion_tokens or self.completion_tokens
                finish_reason = step.finish_reason or finish_reason
                if not step.text:
                    continue
                splitter.add(step.text)
                self._arrivals.append((len(splitter.answer), time.perf_counter()))
                if self.mode == "async":
                    yield self._content(step.text)
                while (window := splitter.next_window()) is not None:
                    if self.mode == "buffered":
                        block = await self._verdict(window)
                        if block:
                            break
                        yield self._release(window)
                    else:
                        checks.append((window, asyncio.ensure_future(self.p._check("output", window.text, self.request_id))))
                if block is None and self.mode == "async":
                    block = await self._first_flag(checks, wait=False)
                if block is not None:
                    break
            else:
                self.p.metrics.stage("generation", time.perf_counter() - t_gen)
            if block is None and (window := splitter.next_window(final=True)) is not None:
                if self.mode == "buffered":
                    block = await self._verdict(window)
                    if block is None:
                        yield self._release(window)
                else:
                    checks.append((window, asyncio.ensure_future(self.p._check("output", window.text, self.request_id))))
            if block is None and self.mode == "async":
                block = await self._first_flag(checks, wait=True)
            await steps.aclose()  # a block stops generation here: vLLM aborts the request
            async for chunk in self._tail(block, finish_reason):
                yield chunk
            completed = True
        except Exception:  # the engine failed mid-stream: tell the client in OpenAI's error shape
            completed = True
            self.p._finish("chat_stream", "error", self.t0, self.completion_tokens)
            yield error_body(503, "The model failed while streaming this answer. Please retry.", code="generator_unavailable")
        finally:
            for _, task in checks:
                task.cancel()
            with contextlib.suppress(Exception):
                await steps.aclose()
            if not completed:
                self.p._finish("chat_stream", "client_disconnected", self.t0, self.completion_tokens)

    async def _verdict(self, window: Window) -> Block | None:
        verdict = await self.p._check("output", window.text, self.request_id)
        if not verdict.flagged:
            return None
        return await self.p._block("output", verdict, self.language, self.request_id, window.text, window)

    async def _first_flag(self, checks: list[tuple[Window, asyncio.Task]], wait: bool) -> Block | None:
        """Async mode: the earliest flagged window among finished checks (all of them if `wait`)."""
        if wait and checks:
            await asyncio.wait([t for _, t in checks])
        for window, task in checks:
            if task.done() and task.result().flagged:
                return await self.p._block("output", task.result(), self.language, self.request_id, window.text, window)
        checks[:] = [(w, t) for w, t in checks if not t.done()]
        return None
