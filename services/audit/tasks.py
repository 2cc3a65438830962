"""Worker-side audit task `chatgate.audit.record`: one event -> one PostgreSQL row.

A failed write is retried with backoff; after `audit.max_retries` the event is parked in the
Redis dead-letter list instead of being dropped. Every successful write then drains a few
parked events, so the list empties by itself once PostgreSQL is back.
"""
from __future__ import annotations

import logging
from typing import Any

import psycopg
import redis
from celery import Celery

from services.audit import AUDIT_TASK, metrics
from services.audit.events import AuditEvent, redacted
from services.audit.parking import DeadLetters
from services.audit.store import AuditStore
from services.config import Settings

log = logging.getLogger("chatgate.audit.worker")


def register(app: Celery, settings: Settings) -> None:
    opts = settings.audit
    store = AuditStore(opts.dsn)
    dead = DeadLetters(redis.Redis.from_url(settings.queue.broker_url, socket_timeout=5), opts.deadletter_key)

    def write(payload: dict[str, Any]) -> bool:
        # Enforce the worker's policy too: raw text is never written unless store_text is on.
        event = redacted(AuditEvent.model_validate(payload), store_text=opts.store_text, hash_key=opts.hash_key)
        inserted = store.insert(event.model_dump())
        if inserted:
            metrics.AUDIT_RECORDS.labels(stage=event.stage, flagged=str(event.flagged).lower()).inc()
        return inserted

    def drain_parked() -> None:
        try:
            n = dead.drain(write, limit=50)
        except (psycopg.Error, redis.RedisError) as exc:
            log.info("dead-letter replay paused: %r", exc)
            return
        if n:
            metrics.AUDIT_DL_REPLAYED.inc(n)
            log.info("wrote %d parked audit events", n)

    @app.task(name=AUDIT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
    def record(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            inserted = write(payload)
        except psycopg.Error as exc:
            metrics.AUDIT_WRITE_ERRORS.inc()
            if self.request.retries < opts.max_retries:
                log.warning("audit write failed (%r); retrying", exc)
                raise self.retry(exc=exc, countdown=min(60, 2 ** min(self.request.retries, 6)))
            try:
                dead.put(payload)
            except redis.RedisError as rexc:  # cannot park either: keep the message and try later
                log.error("audit event %s: dead-letter push failed (%r); retrying", payload.get("event_id"), rexc)
                raise self.retry(exc=exc, countdown=60)
            metrics.AUDIT_DEADLETTERED.inc()
            log.error("audit event %s parked in %s after %d retries", payload.get("event_id"), opts.deadletter_key,
                      self.request.retries)
            return {"event_id": payload.get("event_id"), "parked": True}
        drain_parked()
        return {"event_id": payload.get("event_id"), "inserted": inserted}
