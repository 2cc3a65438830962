"""What the pipeline tells the rest of the system: each moderation decision goes to the audit
trail, each finished answer to the completion records that feedback is joined to."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from services.config import Settings
from services.pipeline.guard import Decision, DecisionHook
from services.pipeline.turn import Answer, ChatTurn

if TYPE_CHECKING:
    from services.feedback import CompletionRecorder


def audit_hook(settings: Settings) -> DecisionHook | None:
    """Moderation decisions -> audit events (the publisher samples passes and redacts text)."""
    if not settings.audit.enabled:
        return None
    from services.audit import AuditEvent, AuditPublisher

    publisher = AuditPublisher(settings)

    async def record(d: Decision) -> None:
        if not publisher.should_record(d.verdict.flagged):
            return
        await publisher.publish(AuditEvent(
            request_id=d.completion_id, stage=d.direction, flagged=d.verdict.flagged,
            categories=d.verdict.flagged_categories, scores=d.verdict.category_scores,
            template_category=d.template.category if d.template else None,
            template_language=d.template.language if d.template else None,
            model=settings.generator.served_model_name, text=d.text,
        ))

    record.publisher = publisher  # type: ignore[attr-defined]  # flushed on shutdown
    return record


def completion_record(turn: ChatTurn, answer: Answer, model: str):
    from services.feedback import ChoiceRecord, CompletionRecord

    outcomes = {"answered", "input_blocked", "output_blocked"}
    return CompletionRecord(
        completion_id=answer.completion_id, api_key_id=turn.api_key_id, model=model, created=time.time(),
        messages=turn.engine_messages(),
        choices=[ChoiceRecord(
            index=c.index, outcome=c.outcome if c.outcome in outcomes and c.finish_reason not in ("error", "aborted") else "error",
            categories=c.block.verdict.flagged_categories if c.block else [], text=c.text,
            template_category=c.block.template.category if c.block else None,
        ) for c in answer.choices],
    )


def answer_hook(settings: Settings, recorder: "CompletionRecorder"):
    """Finished answers -> completion records (what POST /v1/feedback refers to)."""
    model = settings.generator.served_model_name

    async def record(turn: ChatTurn, answer: Answer) -> None:
        await recorder.record(completion_record(turn, answer, model))

    return record
