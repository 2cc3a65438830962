"""Job bodies, job records and the API view of a job. Pure functions: no I/O here."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from services.api.errors import APIError
from services.api.schemas import ChatCompletionRequest

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ItemStatus = Literal["pending", "succeeded", "failed", "cancelled"]


@dataclass
class ParsedJob:
    kind: Literal["single", "list"]
    bodies: list[dict[str, Any]]  # what the worker POSTs, one per item (stream forced off)
    body_hash: str


def _validation_message(exc: ValidationError, prefix: str) -> tuple[str, str]:
    first = exc.errors()[0] if exc.errors() else {}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    param = f"{prefix}{'.' if prefix and loc else ''}{loc}" or None
    return f"{param + ': ' if param else ''}{first.get('msg', 'invalid request')}", param


def parse_job_body(raw: bytes | str, *, max_batch: int) -> ParsedJob:
    """Validate a `POST /v1/jobs` body; raise APIError(400) on anything malformed.

    The body is a chat-completions request object, or a non-empty JSON array of them.
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "We could not parse the JSON body of your request.", code="invalid_json") from None
    if isinstance(data, dict):
        kind, items = "single", [data]
    elif isinstance(data, list):
        kind, items = "list", data
        if not items:
            raise APIError(400, "a job list must contain at least one request", code="invalid_request")
        if len(items) > max_batch:
            raise APIError(400, f"a job list may contain at most {max_batch} requests", code="batch_too_large")
    else:
        raise APIError(400, "the body must be a chat completion request or a list of them", code="invalid_request")
    bodies: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        prefix = f"[{i}]" if kind == "list" else ""
        if not isinstance(item, dict):
            raise APIError(400, f"{prefix or 'body'}: each request must be a JSON object", param=prefix or None,
                           code="invalid_request")
        try:
            req = ChatCompletionRequest.model_validate(item)
        except ValidationError as exc:
            message, param = _validation_message(exc, prefix)
            raise APIError(400, message, param=param, code="invalid_request") from None
        if req.stream:
            raise APIError(400, "streaming is not supported for jobs; omit `stream` or set it to false",
                           param=f"{prefix}{'.' if prefix else ''}stream", code="stream_not_supported")
        body = dict(item)
        body.pop("stream", None)
        body.pop("stream_options", None)
        bodies.append(body)
    canonical = json.dumps(bodies if kind == "list" else bodies[0], sort_keys=True, separators=(",", ":"))
    return ParsedJob(kind=kind, bodies=bodies, body_hash=hashlib.sha256(canonical.encode()).hexdigest())


def idempotency_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


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
            created_at=f("created_at") or 0.0, completed=i("completed"), succeeded=i("succeeded"),
            failed=i("failed"), cancelled=i("cancelled"), blocked=i("blocked"),
            started_at=f("started_at"), finished_at=f("finished_at"), attempts=i("attempts"),
            retries=i("retries"), cancel_requested=h.get("cancel_requested") == "1",
            last_error=h.get("last_error") or None,
            results={int(k): json.loads(v) for k, v in (results or {}).items()},
        )

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
