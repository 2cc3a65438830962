"""Fire-and-forget audit publishing from the Router; nothing is lost silently.

`publish()` redacts the event and puts it in a bounded in-process queue (microseconds); a daemon
thread sends each as the Celery task `chatgate.audit.record` by name. When the broker refuses an
event after its retries, the thread writes it straight to PostgreSQL; when that fails too, it
parks it in the local spool (`audit.spool_dir`), which the thread replays once the broker takes
events again. A full in-process queue spools at once; `close()` (called at exit) flushes the
queue and spools what is left. A moderation decision is never delayed or failed by the audit trail.
"""
from __future__ import annotations

import atexit
import logging
import queue
import random
import threading
import weakref
from typing import Any, Callable

from services.audit import AUDIT_TASK
from services.audit.events import AuditEvent, redacted
from services.audit.metrics import publisher_counters
from services.audit.parking import Spool
from services.audit.store import AuditStore
from services.config import Settings

log = logging.getLogger("chatgate.audit.publisher")

_STOP = object()
_LIVE: "weakref.WeakSet[AuditPublisher]" = weakref.WeakSet()
Send = Callable[[dict[str, Any]], None]


class AuditPublisher:
    def __init__(self, settings: Settings, *, sender: Send | None = None, direct: Send | None = None):
        self.opts = settings.audit
        self._settings = settings
        self._sender = sender  # payload -> None; default: Celery send_task
        self._direct = direct  # payload -> None; default: AuditStore.insert (the broker's fallback)
        self.spool = Spool(self.opts.spool_dir)
        self._q: queue.Queue = queue.Queue(maxsize=self.opts.publish_queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._spooled = len(self.spool) > 0  # left by an earlier run: replay once the broker answers
        self.metrics = publisher_counters()
        if sender is None and self.opts.enabled:
            # Built now, not on the first event: that may come as the interpreter exits, when the
            # imports a first send needs are no longer possible. Connects nothing.
            self._sender = self._celery_sender()
        if direct is None and self.opts.enabled:
            self._direct = self._store_writer()  # connects on first use only
        _LIVE.add(self)

    def should_record(self, flagged: bool) -> bool:
        if not self.opts.enabled:
            return False
        if flagged:
            return True
        rate = self.opts.sample_pass_rate
        return rate > 0 and self._rng.random() < rate

    async def publish(self, event: AuditEvent) -> None:
        """Never raises, never waits on the network."""
        if not self.opts.enabled:
            return
        try:
            payload = redacted(event, store_text=self.opts.store_text, hash_key=self.opts.hash_key).model_dump(mode="json")
        except Exception as exc:
            self.metrics.lost.inc(reason="invalid")
            log.error("audit event could not be serialised: %r", exc)
            return
        try:
            self._ensure_thread()
            self._q.put_nowait(payload)
        except queue.Full:  # a burst beyond the buffer: park it rather than drop it
            self._park(payload)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued event was sent or parked (tests, shutdown)."""
        done = threading.Event()

        def _wait() -> None:
            self._q.join()
            done.set()

        threading.Thread(target=_wait, daemon=True).start()
        return done.wait(self.opts.flush_timeout_s if timeout_s is None else timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, stop the thread, and spool whatever is still queued. Safe to call twice."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self.flush(timeout_s)
            self._q.put(_STOP)
            thread.join(self.opts.flush_timeout_s if timeout_s is None else timeout_s)
        while True:  # the thread is gone (or stuck on a dead broker): what it did not take is spooled
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self._park(item)
            self._q.task_done()

    # --- internals -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-publisher", daemon=True)
                self._thread.start()

    def _celery_sender(self) -> Send:
        from services.queue.app import PUBLISH_RETRY, make_celery

        # redis-py imports concurrent.futures.thread on the first send; during interpreter exit (the
        # atexit flush) that import fails, so resolve the transport and that import now.
        import concurrent.futures.thread  # noqa: F401

        app = make_celery(self._settings.queue)
        app.connection_for_write().transport  # noqa: B018 - loads kombu's Redis transport, connects nothing
        q = self._settings.queue.audit_queue

        def send(payload: dict) -> None:
            app.send_task(AUDIT_TASK, args=[payload], queue=q, retry=True, retry_policy=PUBLISH_RETRY)

        return send

    def _store_writer(self) -> Send:
        store = AuditStore(self.opts.dsn, connect_timeout_s=2)
        return lambda payload: store.insert(AuditEvent.model_validate(payload).model_dump())

    def _park(self, payload: dict) -> None:
        try:
            self.spool.put(payload)
            self._spooled = True
            self.metrics.fallback.inc(path="spool")
        except Exception as exc:
            self.metrics.lost.inc(reason="spool_failed")
            log.error("audit event %s LOST: spool failed: %r", payload.get("event_id"), exc)

    def _deliver(self, payload: dict) -> bool:
        """True when the broker took it (so it is worth replaying the spool)."""
        try:
            if self._sender is None:
                self._sender = self._celery_sender()
            self._sender(payload)
            self.metrics.published.inc()
            return True
        except Exception as exc:
            log.warning("audit event %s: broker refused (%r); writing it to PostgreSQL", payload.get("event_id"), exc)
        try:
            self._direct(payload)
            self.metrics.fallback.inc(path="postgres")
        except Exception as exc:
            log.warning("audit event %s: PostgreSQL refused too (%r); spooled", payload.get("event_id"), exc)
            self._park(payload)
        return False

    def _replay_spool(self) -> None:
        """After a successful send: the broker is back, so send what was parked."""
        try:
            n = self.spool.drain(self._sender, limit=500)
        except Exception as exc:  # broker gone again: try after the next success
            log.info("spool replay paused: %r", exc)
            return
        if n:
            self.metrics.replayed.inc(n)
            log.info("replayed %d spooled audit events", n)
        self._spooled = len(self.spool) > 0

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is _STOP:
                    return
                if self._deliver(item) and self._spooled:
                    self._replay_spool()
            except Exception as exc:  # never let the thread die, never drop the event
                log.exception("audit publisher: %r", exc)
                self._park(item)
            finally:
                self._q.task_done()


def close_all() -> None:
    """Flush every publisher in this process (atexit, and a replica's shutdown hook)."""
    for publisher in list(_LIVE):
        try:
            publisher.close()
        except Exception as exc:
            log.warning("audit publisher close failed: %r", exc)


atexit.register(close_all)
