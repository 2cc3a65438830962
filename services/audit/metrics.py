"""Audit counters. Router side (`publisher_counters`) through services.queue.metrics.counter, so
they reach Prometheus from inside a Ray replica; worker side with prometheus_client.

  chatgate_audit_events_published_total              handed to the broker
  chatgate_audit_events_fallback_total{path}         broker refused: postgres (written directly) | spool
  chatgate_audit_events_replayed_total               spooled events sent later
  chatgate_audit_events_lost_total{reason}           could not even be spooled (disk error): alert on it
  chatgate_audit_records_total{stage,flagged}        rows written by the worker
  chatgate_audit_write_errors_total                  failed writes (retried)
  chatgate_audit_deadlettered_total                  parked in Redis after audit.max_retries
  chatgate_audit_deadletter_replayed_total           written later from the dead-letter list
"""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

from prometheus_client import Counter

from services.queue.metrics import counter


@lru_cache(maxsize=1)
def publisher_counters() -> SimpleNamespace:
    return SimpleNamespace(
        published=counter("chatgate_audit_events_published_total", "Audit events handed to the broker"),
        fallback=counter("chatgate_audit_events_fallback_total",
                         "Audit events the broker refused, by where they went instead", ("path",)),
        replayed=counter("chatgate_audit_events_replayed_total", "Spooled audit events sent later"),
        lost=counter("chatgate_audit_events_lost_total", "Audit events that could not even be spooled", ("reason",)),
    )


AUDIT_RECORDS = Counter("chatgate_audit_records_total", "Audit records written", ["stage", "flagged"])
AUDIT_WRITE_ERRORS = Counter("chatgate_audit_write_errors_total", "Audit writes that failed (retried)")
AUDIT_DEADLETTERED = Counter("chatgate_audit_deadlettered_total", "Audit events parked after their retries")
AUDIT_DL_REPLAYED = Counter("chatgate_audit_deadletter_replayed_total", "Parked audit events written later")
