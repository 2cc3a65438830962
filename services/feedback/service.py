"""Checks and stores one piece of feedback: the judged answers must exist, belong to the caller's
API key and answer the same prompt; ratings and preferences replace earlier ones on the same subject.
Blocking I/O (psycopg): call from a worker thread."""
from __future__ import annotations

import time
from typing import Any

from services.audit.events import text_digest
from services.config import Settings
from services.feedback.metrics import FeedbackMetrics
from services.feedback.recorder import CompletionRecorder
from services.feedback.records import FeedbackRequest
from services.feedback.store import FeedbackStore


class FeedbackError(Exception):
    """Rendered by the HTTP layer in OpenAI's error shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


class FeedbackService:
    def __init__(self, settings: Settings, store: FeedbackStore, metrics: FeedbackMetrics,
                 recorder: CompletionRecorder | None = None):
        self.settings, self.store, self.metrics, self.recorder = settings, store, metrics, recorder

    def submit(self, req: FeedbackRequest, api_key_id: str | None) -> dict[str, Any]:
        limit = self.settings.feedback.reason_max_chars
        if req.reason is not None and len(req.reason) > limit:
            raise FeedbackError(400, f"reason must be at most {limit} characters", param="reason", code="invalid_value")
        refs = [(str(req.completion_id), req.choice_index)] if req.kind == "rating" else req.ranked()
        found = self._load({cid for cid, _ in refs})
        for cid, _ in refs:  # another tenant's completion is as unknown as a made-up id
            if cid not in found or found[cid]["api_key_id"] != api_key_id:
                raise FeedbackError(404, f"No completion `{cid}` (ids expire with their records; "
                                    "feedback must use the API key that made the completion).",
                                    param="completion_id", code="completion_not_found")
        if req.preferred_index is not None:  # the preferred choice beats the completion's others
            cid = refs[0][0]
            refs += [(cid, i) for i in sorted(found[cid]["choices"]) if i != req.preferred_index]
        for cid, index in refs:
            if index not in found[cid]["choices"]:
                raise FeedbackError(400, f"Completion `{cid}` has no choice {index}.",
                                    param="choice_index" if req.kind == "rating" else "ranking", code="invalid_value")
        if req.kind == "preference":
            self._check_preference(refs, found)
        row = self._row(req, refs, api_key_id)
        feedback_id, created = self.store.upsert_feedback(row)
        self._count(req, refs, found)
        body: dict[str, Any] = {"id": feedback_id, "object": "chat.completion.feedback", "kind": req.kind,
                                "completion_id": row["completion_id"], "replaced": not created}
        if req.kind == "rating":
            body.update(choice_index=req.choice_index, verdict=row["verdict"])
        else:
            body["ranking"] = [{"completion_id": cid, "index": i} for cid, i in refs]
        return body

    def _load(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """Completions by id; a record still on its way (feedback a moment after the answer) is waited for."""
        found = self.store.completions(ids)
        deadline = time.monotonic() + self.settings.feedback.lookup_wait_s
        if len(found) < len(ids) and self.recorder is not None and self.recorder.pending():
            self.recorder.flush(self.settings.feedback.lookup_wait_s)
            found = self.store.completions(ids)
        while len(found) < len(ids) and time.monotonic() < deadline:  # written by another replica
            time.sleep(0.1)
            found = self.store.completions(ids)
        return found

    @staticmethod
    def _check_preference(refs: list[tuple[str, int]], found: dict[str, dict[str, Any]]) -> None:
        if len(refs) < 2:
            raise FeedbackError(400, "A preference needs at least two answers to compare; this completion "
                                "has one choice (ask with n=2, or rank answers of two completions).",
                                param="preferred_index", code="invalid_value")
        if len({found[cid]["prompt_sha256"] for cid, _ in refs}) > 1:
            raise FeedbackError(400, "Ranked answers must answer the same prompt.", param="ranking",
                                code="invalid_value")

    def _row(self, req: FeedbackRequest, refs: list[tuple[str, int]], api_key_id: str | None) -> dict[str, Any]:
        audit = self.settings.audit
        reason = req.reason or None
        if req.kind == "rating":
            subject = f"{refs[0][0]}#{refs[0][1]}"
        else:
            subject = "|".join(sorted(f"{cid}#{i}" for cid, i in refs))
        return {
            "kind": req.kind, "subject": subject, "api_key_id": api_key_id, "completion_id": refs[0][0],
            "choice_index": req.choice_index if req.kind == "rating" else None,
            "verdict": req.verdict(), "score": req.score,
            "ranking": [[cid, i] for cid, i in refs] if req.kind == "preference" else None,
            "reason_sha256": text_digest(reason, audit.hash_key) if reason else None,
            "reason": reason if audit.store_text else None,
        }

    def _count(self, req: FeedbackRequest, refs: list[tuple[str, int]], found: dict[str, dict[str, Any]]) -> None:
        outcome = lambda cid, i: found[cid]["choices"][i]["outcome"]  # noqa: E731
        if req.kind == "rating":
            self.metrics.feedback("rating", str(req.verdict()), outcome(*refs[0]))
            return
        for position, (cid, i) in enumerate(refs):
            self.metrics.feedback("preference", "chosen" if position == 0 else "rejected", outcome(cid, i))
