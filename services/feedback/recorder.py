"""The Router's side of feedback: one `record()` per completion, fire-and-forget.

Why a writer thread straight into PostgreSQL (not Celery like the audit trail): feedback arrives
a second after the answer and must find its completion, so the record has to be committed within
milliseconds, and a feedback row references it by foreign key. `record()` only enqueues (no I/O,
no hashing on the caller's loop); the thread redacts (texts kept only with audit.store_text, the
audit's rule), batches and writes. If PostgreSQL is down, records are retried briefly, then
dropped and counted: an answer is never delayed or failed by this.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from services.audit.events import text_digest
from services.config import Settings
from services.feedback.metrics import FeedbackMetrics
from services.feedback.records import CompletionRecord
from services.feedback.store import FeedbackStore

log = logging.getLogger("chatgate.feedback.recorder")
_STOP = object()
MAX_BATCH = 64


def feedback_dsn(settings: Settings) -> str:
    return settings.feedback.dsn or settings.audit.dsn


def prompt_key(messages: list[dict[str, str]]) -> str:
    """The text a prompt digest is taken over: role-tagged turns, stable across clients."""
    return "\n".join(f"{m.get('role', '')}\x1f{m.get('content', '')}" for m in messages)


def redact(record: CompletionRecord, *, store_text: bool, hash_key: str = "") -> dict[str, Any]:
    """A storable row: digests and lengths always, texts only when the operator keeps them."""
    prompt = prompt_key(record.messages)
    return {
        "completion_id": record.completion_id, "api_key_id": record.api_key_id, "model": record.model,
        "created": record.created, "prompt_sha256": text_digest(prompt, hash_key), "prompt_chars": len(prompt),
        "messages": record.messages if store_text else None,
        "choices": [{
            "index": c.index, "outcome": c.outcome, "categories": list(c.categories),
            "template_category": c.template_category, "text_sha256": text_digest(c.text, hash_key),
            "text_chars": len(c.text), "text": c.text if store_text else None,
        } for c in record.choices],
    }


class CompletionRecorder:
    def __init__(self, settings: Settings, *, store: FeedbackStore | None = None,
                 metrics: FeedbackMetrics | None = None, retries: int = 3):
        self.settings = settings
        self.enabled = settings.feedback.enabled
        self.store = store or FeedbackStore(feedback_dsn(settings))
        self.metrics = metrics or FeedbackMetrics()
        self.retries = retries
        self._q: queue.Queue = queue.Queue(maxsize=settings.feedback.queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def record(self, record: CompletionRecord) -> None:
        """Never raises, never waits on the network."""
        if not self.enabled:
            return
        try:
            self._ensure_thread()
            self._q.put_nowait(record)
        except queue.Full:
            self.metrics.record("dropped_queue_full")
        except Exception as exc:  # pragma: no cover - defensive: the answer must not fail
            log.warning("completion record not queued: %r", exc)

    def pending(self) -> int:
        return self._q.unfinished_tasks

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued record was written or dropped (feedback racing its answer, tests)."""
        deadline = time.monotonic() + timeout_s
        while self._q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._q.unfinished_tasks == 0

    def close(self, timeout_s: float = 5.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout_s)
            try:
                self._q.put_nowait(_STOP)
            except queue.Full:
                pass
            self._thread.join(timeout_s)
        self.store.close()

    # -- the writer thread ---------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="feedback-recorder", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        audit = self.settings.audit
        while True:
            batch = [self._q.get()]
            while len(batch) < MAX_BATCH:  # whatever else is already waiting goes in the same transaction
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            records = [item for item in batch if item is not _STOP]
            try:
                if records:
                    self._write([redact(r, store_text=audit.store_text, hash_key=audit.hash_key) for r in records])
            except Exception as exc:
                self.metrics.record("dropped_error", len(records))
                log.warning("%d completion records not written: %r", len(records), exc)
            finally:
                for _ in batch:
                    self._q.task_done()
            if stop:
                return

    def _write(self, rows: list[dict[str, Any]]) -> None:
        for attempt in range(self.retries):
            try:
                self.store.insert_completions(rows)
                self.metrics.record("written", len(rows))
                return
            except Exception:
                if attempt == self.retries - 1:
                    raise
                time.sleep(0.2 * 2 ** attempt)
