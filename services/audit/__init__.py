"""Moderation audit trail: the Router publishes `AuditEvent`s as Celery tasks; the worker writes
them to PostgreSQL (`services.audit.store`). Importing this package pulls no worker code."""
from services.audit.events import AuditEvent
from services.audit.publisher import AuditPublisher

__all__ = ["AuditEvent", "AuditPublisher"]
