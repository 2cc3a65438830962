"""Moderation audit trail: the Router publishes `AuditEvent`s as Celery tasks (services/queue);
the worker writes them to PostgreSQL (`services.audit.store`). Nothing is dropped silently: what
the broker refuses goes straight to PostgreSQL or to a local spool, what PostgreSQL refuses
waits in a Redis dead-letter list; both are replayed. Importing this package pulls no worker code."""
AUDIT_TASK = "chatgate.audit.record"

from services.audit.events import AuditEvent  # noqa: E402
from services.audit.publisher import AuditPublisher  # noqa: E402

__all__ = ["AUDIT_TASK", "AuditEvent", "AuditPublisher"]
