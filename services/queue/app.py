"""Celery application factory, used by producers (send_task by name) and the worker.

Delivery semantics (see docs/jobs-and-audit.md):
- acks_late: a message is acknowledged only after the task returned (or re-scheduled itself),
  so a worker that dies mid-task leaves it unacknowledged;
- Redis broker: unacknowledged messages go back on the queue once older than
  `visibility_timeout_s`; every worker sweeps for them at start and every `restore_interval_s`;
- prefetch 1: a worker holds at most `concurrency` messages it has not started.
"""
from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from services.config import QueueSettings

# Retry policy of one publish: a broker blip is bridged, a dead broker fails within seconds.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def make_celery(q: QueueSettings, *, main: str = "chatgate") -> Celery:
    app = Celery(main, broker=q.broker_url, backend=q.result_backend, set_as_current=False)
    transport = {
        "visibility_timeout": q.visibility_timeout_s,
        "unacked_restore_interval": q.restore_interval_s,
        "unacked_restore_throttle": 1,
        "socket_timeout": q.publish_timeout_s,
        "socket_connect_timeout": q.publish_timeout_s,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=False,
        result_extended=False,
        broker_transport_options=transport,
        result_backend_transport_options={"socket_timeout": q.publish_timeout_s},
        broker_connection_retry_on_startup=True,
        task_default_queue=q.jobs_queue,
        task_default_exchange=q.jobs_queue,
        task_default_routing_key=q.jobs_queue,
        task_queues=tuple(Queue(n, Exchange(n, type="direct"), routing_key=n) for n in (q.jobs_queue, q.audit_queue)),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app
