"""The audit event and its redaction (text is hashed, never stored, unless audit.store_text)."""
from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, Field


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AuditEvent(BaseModel):
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)  # dedupes re-deliveries
    ts: datetime = Field(default_factory=_now)
    request_id: str | None = None
    stage: Literal["input", "output"]
    flagged: bool
    categories: list[str] = Field(default_factory=list)  # flagged category names
    scores: dict[str, float] = Field(default_factory=dict)
    template_category: str | None = None
    template_language: str | None = None
    model: str | None = None
    # Raw text in; `redacted()` turns it into a hash unless the operator keeps text.
    text: str | None = None
    text_sha256: str | None = None
    text_chars: int | None = None


def text_digest(text: str, key: str = "") -> str:
    data = text.encode("utf-8")
    if key:
        return "hmac-sha256:" + hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def redacted(event: AuditEvent, *, store_text: bool, hash_key: str = "") -> AuditEvent:
    """A copy safe to send/store: digest + length always; the text itself only if store_text."""
    if event.text is None:
        return event
    return event.model_copy(update={
        "text_sha256": text_digest(event.text, hash_key),
        "text_chars": len(event.text),
        "text": event.text if store_text else None,
    })
