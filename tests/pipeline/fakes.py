"""Fakes for unit tests of services/ (no Ray, no vLLM, no ONNX). Real components have their own tests."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from services.config import Settings
from services.generation.types import GenerationRequest, GenerationStep
from services.moderation.base import ModerationPolicy, ModerationVerdict
from services.observability.metrics import PipelineMetrics
from services.pipeline.chat import ChatPipeline
from services.pipeline.guard import Guard
from services.pipeline.turn import ChatTurn, Message
from services.templates.store import Template, languages_of

CATEGORIES = ("harassment", "self-harm", "violence")
KEYWORDS = {"idiot": "harassment", "cut myself": "self-harm", "kill you": "violence"}


def keyword_verdict(text: str, policy: ModerationPolicy | None = None) -> ModerationVerdict:
    scores = {c: 0.0 for c in CATEGORIES}
    for word, category in KEYWORDS.items():
        if word in text.lower():
            scores[category] = 0.99
    return (policy or ModerationPolicy()).judge(scores)


class FakeStages:
    """Generates a scripted answer word by word; moderates by keywords; records what was called."""

    def __init__(self, answer: str = "Hello there. This is a perfectly fine answer.", *, prompt_tokens: int = 7,
                 error: str | None = None, fail_moderation: bool = False, delay: float = 0.0,
                 input_delay: float = 0.0):
        self.answer, self.prompt_tokens, self.error = answer, prompt_tokens, error
        self.fail_moderation, self.delay, self.input_delay = fail_moderation, delay, input_delay
        self.generate_calls = 0
        self.requests: list[GenerationRequest] = []
        self.closed_early = 0
        self.input_checks: list[list[str]] = []
        self.output_checks: list[tuple[str, str]] = []
        self.tokens_generated = 0

    async def moderate_input(self, texts: list[str]) -> ModerationVerdict:
        self.input_checks.append(list(texts))
        await asyncio.sleep(self.input_delay)
        if self.fail_moderation:
            raise ConnectionError("moderation replica unreachable")
        return keyword_verdict(" ".join(texts))

    async def moderate_output(self, request: str, texts: list[str]) -> list[ModerationVerdict]:
        self.output_checks += [(request, t) for t in texts]
        if self.fail_moderation:
            raise ConnectionError("moderation replica unreachable")
        return [keyword_verdict(t) for t in texts]

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        self.generate_calls += 1
        self.requests.append(request)
        if self.error:
            yield GenerationStep(error=self.error, error_code="context_length_exceeded")
            return
        words = self.answer.split(" ")
        finished = False
        try:
            yield GenerationStep(prompt_tokens=self.prompt_tokens)
            pending = ""  # like the engine: pieces of at least `chunk_chars` (0: every token)
            for i, word in enumerate(words):
                await asyncio.sleep(self.delay)
                self.tokens_generated += 1
                last = i == len(words) - 1
                pending += word if i == 0 else " " + word
                if last or len(pending) >= request.chunk_chars:
                    yield GenerationStep(text=pending, completion_tokens=i + 1, finish_reason="stop" if last else None)
                    pending = ""
            finished = True
        finally:
            if not finished:
                self.closed_early += 1

    async def template(self, category: str, languages: list[str]) -> Template:
        lang = next((lang for lang in languages_of(languages) if lang in ("en", "de", "fr", "es")), "en")
        return Template(f"[template {category}/{lang}]", category, lang, "redis")


def make_pipeline(stages: FakeStages, **overrides: Any) -> tuple[ChatPipeline, PipelineMetrics]:
    settings = Settings.model_validate({"audit": {"enabled": False}, **overrides})
    metrics = PipelineMetrics()
    guard = Guard(stages, settings.guard, metrics, settings.templates)
    return ChatPipeline(stages, guard, settings.streaming, settings.api.admission, metrics), metrics


def turn(text: str, *, role: str = "user", history: list[tuple[str, str]] = (), languages=("en",), **kw: Any) -> ChatTurn:
    messages = [Message(r, c) for r, c in history] + [Message(role, text)]
    return ChatTurn(messages=messages, max_tokens=kw.pop("max_tokens", 64), languages=list(languages), **kw)


class FakeBackend:
    """services.api.app.Backend over FakeStages."""

    def __init__(self, stages: FakeStages, **overrides: Any):
        self.pipeline, self.metrics = make_pipeline(stages, **overrides)
        self.settings = Settings.model_validate({"audit": {"enabled": False}, **overrides})

    async def moderate(self, texts: list[str]) -> list[ModerationVerdict]:
        return [keyword_verdict(t) for t in texts]

    async def readiness(self) -> dict[str, Any]:
        return {"model_loaded": True, "classifier_loaded": True, "templates": "redis"}

    async def engine_stats(self) -> dict[str, Any]:
        return {"requests_started": 0, "unfinished_requests": 0}


class BrokenStages(FakeStages):
    """The generator dies after `fail_after` words; the template stage is unreachable."""

    def __init__(self, fail_after: int, **kw: Any):
        super().__init__(**kw)
        self.fail_after = fail_after

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        if self.fail_after < 0:
            raise RuntimeError("engine dead")
            yield  # pragma: no cover - makes this an async generator
        n = 0
        async for step in super().generate(request):
            if step.text:
                n += 1
                if n > self.fail_after:
                    raise RuntimeError("engine dead")
            yield step

    async def template(self, category: str, languages: list[str]):
        raise ConnectionError("template replica unreachable")
