"""The one guard: every moderation round trip of the pipeline goes through `Guard.check`.

It owns, in one place, what happens around a check: the per-hop timeout, fail closed (or open,
when the operator says so, counted either way), flag and latency metrics, the audit record of the
decision, and the template that replaces a blocked text, with the built-in fallback when the
template stage cannot answer. The moderation deployment itself only scores or raises.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.config import GuardSettings, TemplateSettings
from services.moderation.base import ModerationVerdict, failed_closed_verdict
from services.observability.metrics import PipelineMetrics
from services.pipeline.outcome import Block, Direction
from services.pipeline.windows import Window
from services.templates.language import with_detected_language
from services.templates.store import Template, builtin_template, load_builtin

log = logging.getLogger("chatgate.guard")


class ModerationStages(Protocol):
    async def moderate_input(self, texts: list[str]) -> ModerationVerdict:
        """One verdict for a whole conversation (every message, every window)."""
        ...

    async def moderate_output(self, request: str, texts: list[str]) -> list[ModerationVerdict]:
        """One verdict per answer window, each judged in the context of the request."""
        ...

    async def template(self, category: str, languages: list[str]) -> Template: ...


@dataclass(frozen=True)
class CheckContext:
    completion_id: str
    languages: list[str]  # template language preferences, best first
    request_text: str = ""  # what output windows are judged against


@dataclass(frozen=True)
class Decision:
    """What the audit trail records about one check."""

    direction: Direction
    completion_id: str
    verdict: ModerationVerdict
    text: str
    template: Template | None


DecisionHook = Callable[[Decision], Awaitable[None]]  # must not raise


def first_flag(checks: Sequence[asyncio.Future]) -> Block | None:
    """The block of the earliest finished check (in window order) that flagged; None without waiting."""
    for check in checks:
        if check.done() and (block := check.result()) is not None:
            return block
    return None


class Guard:
    def __init__(self, stages: ModerationStages, settings: GuardSettings, metrics: PipelineMetrics,
                 templates: TemplateSettings, on_decision: DecisionHook | None = None):
        self.stages, self.settings, self.metrics = stages, settings, metrics
        self.on_decision = on_decision
        self.default_language = templates.default_language
        self.detect_language_min_confidence = templates.detect_language_min_confidence
        self._builtin = load_builtin(templates.builtin_file)  # what a block shows when the template stage is down
        self._background: set[asyncio.Task] = set()

    async def check(self, direction: Direction, texts: Sequence[str], ctx: CheckContext,
                    windows: Sequence[Window] | None = None) -> Block | None:
        """Input: `texts` are the messages of one conversation. Output: `texts` are answer windows
        (`windows` their positions). Returns the block for the first flagged text, else None."""
        verdicts = await self._verdicts(direction, list(texts), ctx)
        if verdicts is None:  # failed open: nothing was checked
            return None
        if direction == "input":
            texts = ["\n".join(texts)]
        block = None
        for i, (text, verdict) in enumerate(zip(texts, verdicts)):
            self.metrics.flags(direction, verdict.flagged_categories)
            if verdict.flagged:
                window = windows[i] if windows else None
                block = await self._block(direction, verdict, ctx, text, window)
                break
            self._record(Decision(direction, ctx.completion_id, verdict, text, None))
        return block

    def check_window(self, window: Window, ctx: CheckContext) -> asyncio.Future:
        """One answer window's output check, started now as a task (it runs beside generation)."""
        return asyncio.ensure_future(self.check("output", [window.text], ctx, [window]))

    async def _verdicts(self, direction: Direction, texts: list[str], ctx: CheckContext) -> list[ModerationVerdict] | None:
        t0 = time.perf_counter()
        try:
            if direction == "input":
                call = self.stages.moderate_input(texts)
                return [await asyncio.wait_for(call, self.settings.moderation_timeout_s)]
            call = self.stages.moderate_output(ctx.request_text, texts)
            return await asyncio.wait_for(call, self.settings.moderation_timeout_s)
        except Exception as exc:  # replica down, timeout, classifier error
            self.metrics.moderation_failure(direction)
            if self.settings.fail_open:
                log.warning("%s moderation failed (%r); failing OPEN as configured", direction, exc)
                return None
            log.warning("%s moderation failed (%r); failing closed", direction, exc)
            n = 1 if direction == "input" else len(texts)
            return [failed_closed_verdict(()) for _ in range(n)]
        finally:
            self.metrics.stage(f"{direction}_moderation", time.perf_counter() - t0)

    async def _block(self, direction: Direction, verdict: ModerationVerdict, ctx: CheckContext, text: str,
                     window: Window | None) -> Block:
        languages = with_detected_language(ctx.languages, ctx.request_text, self.detect_language_min_confidence)
        template = await self.template(verdict.template_category() or "default", languages)
        self._record(Decision(direction, ctx.completion_id, verdict, text, template))
        return Block(direction, verdict, template, window)

    async def template(self, category: str, languages: list[str]) -> Template:
        """The template stage's text, or the built-in one when that stage fails or is slow."""
        t0 = time.perf_counter()
        try:
            return await asyncio.wait_for(self.stages.template(category, languages), self.settings.template_timeout_s)
        except Exception as exc:
            log.warning("template stage unavailable (%r): built-in text", exc)
            self.metrics.template_fallback()
            return builtin_template(self._builtin, category, languages, self.default_language)
        finally:
            self.metrics.stage("template", time.perf_counter() - t0)

    def _record(self, decision: Decision) -> None:
        if self.on_decision is None:
            return
        task = asyncio.ensure_future(self.on_decision(decision))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
