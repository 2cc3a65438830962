"""Queue metrics: the worker's task metrics and broker depth (prometheus_client, served by the
worker), and `counter()` for producers, which may live in a Ray Serve replica.

Inside a replica only `ray.serve.metrics` reach Prometheus (Ray exports them on its metrics port
with a `ray_` prefix); prometheus_client objects there are never exported. Outside Ray (the
worker, tests, tools) prometheus_client is used.

Worker names:
  chatgate_worker_queue_depth{queue}                 messages waiting in each broker queue
  chatgate_worker_unacked_messages                   delivered, not yet acknowledged (in flight)
  chatgate_worker_task_duration_seconds{task,state}  task run time (histogram)
  chatgate_worker_task_failures_total{task,exception}
  chatgate_worker_task_retries_total{task}
  chatgate_worker_tasks_active{task}
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("chatgate.queue.metrics")

TASK_SECONDS = Histogram(
    "chatgate_worker_task_duration_seconds", "Celery task run time", ["task", "state"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200),
)
TASK_FAILURES = Counter("chatgate_worker_task_failures_total", "Celery tasks that raised", ["task", "exception"])
TASK_RETRIES = Counter("chatgate_worker_task_retries_total", "Celery task retries scheduled", ["task"])
TASKS_ACTIVE = Gauge("chatgate_worker_tasks_active", "Celery tasks running now", ["task"])

_starts: dict[str, float] = {}
_lock = threading.Lock()


def in_ray_replica() -> bool:
    if "ray" not in sys.modules:  # a replica has always imported Ray; don't pay for it elsewhere
        return False
    try:
        from ray import serve

        serve.get_replica_context()
        return True
    except Exception:  # not in a replica, or Ray not installed
        return False


class _RayCounter:
    def __init__(self, name: str, doc: str, labels: tuple[str, ...]):
        from ray.serve import metrics

        self._c = metrics.Counter(name, description=doc, tag_keys=labels)

    def inc(self, value: float = 1, **tags: str) -> None:
        self._c.inc(value, tags=tags or None)


class _PromCounter:
    def __init__(self, name: str, doc: str, labels: tuple[str, ...]):
        existing = REGISTRY._names_to_collectors.get(name.removesuffix("_total"))  # re-created in one process
        self._c = existing or Counter(name.removesuffix("_total"), doc, list(labels))

    def inc(self, value: float = 1, **tags: str) -> None:
        (self._c.labels(**tags) if tags else self._c).inc(value)


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
    """A counter exported from wherever the caller runs: Ray's metrics in a replica, else prometheus_client."""
    return (_RayCounter if in_ray_replica() else _PromCounter)(name, doc, labels)


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
