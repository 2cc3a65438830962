"""Worker-side audit task `chatgate.audit.record`: one event -> one PostgreSQL row."""
from __future__ import annotations

import logging
from typing import Any

import psycopg
from celery import Celery

from services.audit.events import AuditEvent, redacted
from services.audit.store import AuditStore
from services.config import Settings
from services.jobs import metrics
from services.jobs.options import AUDIT_TASK, AuditOptions

log = logging.getLogger("chatgate.audit.worker")


def register(app: Celery, settings: Settings) -> None:
    opts = AuditOptions.from_settings(settings)
    store = AuditStore(opts.dsn)

    @app.task(name=AUDIT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=20)
    def record(self, payload: dict[str, Any]) -> dict[str, Any]:
        event = AuditEvent.model_validate(payload)
        # Enforce the worker's policy too: raw text is never written unless store_text is on.
        event = redacted(event, store_text=opts.store_text, hash_key=opts.hash_key)
        try:
            inserted = store.insert(event.model_dump())
        except psycopg.Error as exc:
            metrics.AUDIT_WRITE_ERRORS.inc()
            log.warning("audit write failed (%r); retrying", exc)
            raise self.retry(exc=exc, countdown=min(60, 2 ** min(self.request.retries, 6)))
        if inserted:
            metrics.AUDIT_RECORDS.labels(stage=event.stage, flagged=str(event.flagged).lower()).inc()
        return {"event_id": event.event_id, "inserted": inserted}
