"""Fire-and-forget audit publishing from the Router.

`publish()` redacts the event and drops it into a bounded in-process queue (microseconds);
a daemon thread sends each one as the Celery task `chatgate.audit.record` by name. If the
broker is down the event is retried briefly, then dropped and counted — a moderation decision
is never delayed or failed by the audit trail.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
from typing import Any

from prometheus_client import Counter

from services.audit.events import AuditEvent, redacted
from services.config import Settings
from services.jobs.options import AUDIT_TASK, AuditOptions, JobOptions

log = logging.getLogger("chatgate.audit.publisher")

try:
    PUBLISHED = Counter("chatgate_audit_events_published_total", "Audit events handed to the broker")
    DROPPED = Counter("chatgate_audit_events_dropped_total", "Audit events lost (queue full or broker down)",
                      ["reason"])
except ValueError:  # re-imported in the same process (tests): reuse the registered ones
    from prometheus_client import REGISTRY

    PUBLISHED = REGISTRY._names_to_collectors["chatgate_audit_events_published_total"]  # type: ignore[assignment]
    DROPPED = REGISTRY._names_to_collectors["chatgate_audit_events_dropped_total"]  # type: ignore[assignment]

_STOP = object()


class AuditPublisher:
    def __init__(self, settings: Settings, *, sender: Any = None):
        self.opts = AuditOptions.from_settings(settings)
        self._settings = settings
        self._jobs = JobOptions.from_settings(settings)
        self._sender = sender  # callable(payload: dict) for tests; default: Celery send_task
        self._q: queue.Queue = queue.Queue(maxsize=self.opts.publish_queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rng = random.Random()

    def should_record(self, flagged: bool) -> bool:
        if not self.opts.enabled:
            return False
        if flagged:
            return True
        rate = self.opts.sample_pass_rate
        return rate > 0 and self._rng.random() < rate

    async def publish(self, event: AuditEvent) -> None:
        """Never raises, never waits on the network."""
        try:
            if not self.opts.enabled:
                return
            safe = redacted(event, store_text=self.opts.store_text, hash_key=self.opts.hash_key)
            self._ensure_thread()
            self._q.put_nowait(safe.model_dump(mode="json"))
        except queue.Full:
            DROPPED.labels(reason="queue_full").inc()
        except Exception as exc:
            DROPPED.labels(reason="error").inc()
            log.warning("audit publish failed: %r", exc)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued event was handed to the broker (tests, shutdown)."""
        done = threading.Event()

        def _wait() -> None:
            self._q.join()
            done.set()

        threading.Thread(target=_wait, daemon=True).start()
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout_s)
            try:
                self._q.put_nowait(_STOP)
            except queue.Full:
                pass
            self._thread.join(timeout_s)

    # --- internals -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-publisher", daemon=True)
                self._thread.start()

    def _make_sender(self):
        from services.jobs.celery_app import make_celery

        app = make_celery(self._settings)
        q = self._jobs.audit_queue

        def send(payload: dict) -> None:
            app.send_task(AUDIT_TASK, args=[payload], queue=q, retry=True,
                          retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5,
                                        "interval_max": 2.0})

        return send

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is _STOP:
                    return
                if self._sender is None:
                    self._sender = self._make_sender()
                self._sender(item)
                PUBLISHED.inc()
            except Exception as exc:
                DROPPED.labels(reason="broker").inc()
                log.warning("audit event %s not sent: %r", item.get("event_id") if isinstance(item, dict) else "?", exc)
            finally:
                self._q.task_done()
