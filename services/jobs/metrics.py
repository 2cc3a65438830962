"""Prometheus metrics of the Celery worker (served by `python -m services.jobs.worker`, port 9101).

Names (all prefixed chatgate_worker_ / chatgate_jobs_ / chatgate_audit_):
  chatgate_worker_queue_depth{queue}                 messages waiting in each broker queue
  chatgate_worker_unacked_messages                   delivered, not yet acknowledged (in flight)
  chatgate_worker_task_duration_seconds{task,state}  task run time (histogram)
  chatgate_worker_task_failures_total{task,exception}
  chatgate_worker_task_retries_total{task}
  chatgate_worker_tasks_active{task}
  chatgate_jobs_finished_total{status}
  chatgate_jobs_items_total{outcome}                 passed->succeeded / blocked / failed / cancelled
  chatgate_jobs_deferred_total                       deliveries parked because another holds the lease
  chatgate_audit_records_total{stage,flagged}
  chatgate_audit_write_errors_total
"""
from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger("chatgate.jobs.metrics")

TASK_SECONDS = Histogram(
    "chatgate_worker_task_duration_seconds", "Celery task run time", ["task", "state"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200),
)
TASK_FAILURES = Counter("chatgate_worker_task_failures_total", "Celery tasks that raised", ["task", "exception"])
TASK_RETRIES = Counter("chatgate_worker_task_retries_total", "Celery task retries scheduled", ["task"])
TASKS_ACTIVE = Gauge("chatgate_worker_tasks_active", "Celery tasks running now", ["task"])
JOBS_FINISHED = Counter("chatgate_jobs_finished_total", "Jobs that reached a final status", ["status"])
JOB_ITEMS = Counter("chatgate_jobs_items_total", "Job items by outcome", ["outcome"])
JOB_DEFERRED = Counter("chatgate_jobs_deferred_total", "Job deliveries parked behind a live lease")
AUDIT_RECORDS = Counter("chatgate_audit_records_total", "Audit records written", ["stage", "flagged"])
AUDIT_WRITE_ERRORS = Counter("chatgate_audit_write_errors_total", "Audit writes that failed (retried)")

_starts: dict[str, float] = {}
_lock = threading.Lock()


def install_signal_handlers() -> None:
    """Hook Celery signals (call once in the worker process)."""
    from celery import signals

    @signals.task_prerun.connect(weak=False)
    def _prerun(task_id=None, task=None, **_):
        with _lock:
            _starts[task_id] = time.perf_counter()
        TASKS_ACTIVE.labels(task=task.name).inc()

    @signals.task_postrun.connect(weak=False)
    def _postrun(task_id=None, task=None, state=None, **_):
        with _lock:
            start = _starts.pop(task_id, None)
        TASKS_ACTIVE.labels(task=task.name).dec()
        if start is not None:
            TASK_SECONDS.labels(task=task.name, state=str(state or "UNKNOWN")).observe(time.perf_counter() - start)

    @signals.task_failure.connect(weak=False)
    def _failure(sender=None, exception=None, **_):
        TASK_FAILURES.labels(task=getattr(sender, "name", "?"), exception=type(exception).__name__).inc()

    @signals.task_retry.connect(weak=False)
    def _retry(sender=None, **_):
        TASK_RETRIES.labels(task=getattr(sender, "name", "?")).inc()


class QueueDepthCollector(Collector):
    """Reads queue lengths from the Redis broker at scrape time."""

    def __init__(self, broker_url: str, queues: list[str]):
        import redis

        self.queues = queues
        self.r = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)

    def collect(self):
        depth = GaugeMetricFamily("chatgate_worker_queue_depth", "Messages waiting in the broker queue",
                                  labels=["queue"])
        unacked = GaugeMetricFamily("chatgate_worker_unacked_messages",
                                    "Messages delivered to a worker and not yet acknowledged")
        try:
            for q in self.queues:
                # kombu keeps priority levels as extra lists named `queue\x06\x16N`
                n = self.r.llen(q)
                for key in self.r.scan_iter(match=f"{q}\x06\x16*", count=100):
                    n += self.r.llen(key)
                depth.add_metric([q], n)
            unacked.add_metric([], self.r.hlen("unacked"))
        except Exception as exc:  # never break a scrape
            log.debug("queue depth scrape failed: %r", exc)
        yield depth
        yield unacked


def register_queue_collector(broker_url: str, queues: list[str]) -> None:
    REGISTRY.register(QueueDepthCollector(broker_url, queues))
