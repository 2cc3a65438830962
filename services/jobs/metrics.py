"""Job counters of the Celery worker (served with the queue metrics by services.queue.worker).

  chatgate_jobs_finished_total{status}
  chatgate_jobs_items_total{outcome}      succeeded / blocked / failed / cancelled
  chatgate_jobs_deferred_total            deliveries parked because another holds the lease
  chatgate_jobs_requeued_total            jobs re-published by the reconciler (their message was lost)
"""
from __future__ import annotations

from prometheus_client import Counter

JOBS_FINISHED = Counter("chatgate_jobs_finished_total", "Jobs that reached a final status", ["status"])
JOB_ITEMS = Counter("chatgate_jobs_items_total", "Job items by outcome", ["outcome"])
JOB_DEFERRED = Counter("chatgate_jobs_deferred_total", "Job deliveries parked behind a live lease")
JOBS_REQUEUED = Counter("chatgate_jobs_requeued_total", "Jobs re-published because their message was lost")
