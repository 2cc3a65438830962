"""Job records, their view, idempotency digests. Pure functions: no I/O, no HTTP here."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ItemStatus = Literal["pending", "succeeded", "failed", "cancelled"]


def body_hash(bodies: list[dict[str, Any]], kind: str) -> str:
    """What an Idempotency-Key is bound to: the canonical JSON of the submitted body."""
    canonical = json.dumps(bodies if kind == "list" else bodies[0], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_digest(owner: str | None, key: str) -> str:
    """Idempotency keys are per API key: two tenants may use the same key for different jobs."""
    return hashlib.sha256(f"{owner or ''}\0{key}".encode("utf-8")).hexdigest()


def moderation_outcome(response: dict[str, Any]) -> dict[str, Any]:
    """The moderation part of an item result, from the chat-completions response."""
    mod = response.get("chatgate_moderation") or {}
    choices = response.get("choices") or [{}]
    finish = (choices[0] or {}).get("finish_reason")
    stage = mod.get("stage")
    blocked = finish == "content_filter" or bool(stage)
    return {
        "outcome": "blocked" if blocked else "passed",
        "stage": stage,
        "categories": list(mod.get("categories") or []),
        "category_scores": dict(mod.get("category_scores") or {}),
        "template": mod.get("template"),
    }


@dataclass
class JobRecord:
    id: str
    status: str
    kind: str
    total: int
    created_at: float
    owner: str | None = None  # api_key_id of the creator; None when API keys are off
    completed: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    blocked: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    retries: int = 0
    cancel_requested: bool = False
    last_error: str | None = None
    results: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_hash(self) -> dict[str, str]:
        out = {
            "id": self.id, "status": self.status, "kind": self.kind, "total": str(self.total),
            "created_at": repr(self.created_at), "completed": str(self.completed),
            "succeeded": str(self.succeeded), "failed": str(self.failed), "cancelled": str(self.cancelled),
            "blocked": str(self.blocked), "attempts": str(self.attempts), "retries": str(self.retries),
            "cancel_requested": "1" if self.cancel_requested else "0",
            "owner": self.owner or "",
        }
        if self.started_at is not None:
            out["started_at"] = repr(self.started_at)
        if self.finished_at is not None:
            out["finished_at"] = repr(self.finished_at)
        if self.last_error:
            out["last_error"] = self.last_error
        return out

    @classmethod
    def from_hash(cls, h: dict[str, str], results: dict[str, str] | None = None) -> "JobRecord":
        def f(name: str) -> float | None:
            v = h.get(name)
            return float(v) if v not in (None, "") else None

        def i(name: str) -> int:
            return int(h.get(name) or 0)

        return cls(
            id=h["id"], status=h["status"], kind=h.get("kind", "single"), total=i("total"),
            created_at=f("created_at") or 0.0, owner=h.get("owner") or None, completed=i("completed"), succeeded=i("succeeded"),
            failed=i("failed"), cancelled=i("cancelled"), blocked=i("blocked"),
            started_at=f("started_at"), finished_at=f("finished_at"), attempts=i("attempts"),
            retries=i("retries"), cancel_requested=h.get("cancel_requested") == "1",
            last_error=h.get("last_error") or None,
            results={int(k): json.loads(v) for k, v in (results or {}).items()},
        )

    def visible_to(self, owner: str | None) -> bool:
        return (self.owner or None) == (owner or None)

    def view(self) -> dict[str, Any]:
        """The `GET /v1/jobs/{id}` body."""
        results = []
        for idx in range(self.total):
            item = self.results.get(idx)
            if item is None:
                state = "cancelled" if self.status == "cancelled" else "pending"
                item = {"index": idx, "status": state, "response": None, "moderation": None, "error": None}
            results.append(item)
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.job",
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "batch": self.kind == "list",
            "progress": {
                "total": self.total, "completed": self.completed, "succeeded": self.succeeded,
                "failed": self.failed, "cancelled": self.cancelled, "blocked": self.blocked,
            },
            "attempts": self.attempts,
            "retries": self.retries,
            "cancel_requested": self.cancel_requested,
            "error": self.last_error if self.status == "failed" else None,
            "results": results,
        }
        if self.kind == "single":
            body["result"] = results[0]
        return body
