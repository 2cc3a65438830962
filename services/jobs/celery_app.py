"""Celery application factory shared by the Router (client side: send_task by name) and the worker.

Delivery semantics (see docs/jobs-and-audit.md):
- acks_late: a message is acknowledged only after the task returned (or was re-scheduled by
  a retry), so a worker that dies mid-task leaves it unacknowledged;
- Redis broker: unacknowledged messages are restored to the queue once they are older than
  `visibility_timeout_s`; every worker sweeps for them at start and every `restore_interval_s`;
- prefetch 1: a worker holds at most `concurrency` messages it has not started.
"""
from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from services.config import Settings
from services.jobs.options import AUDIT_TASK, JOBS_TASK, JobOptions


def make_celery(settings: Settings, *, main: str = "chatgate") -> Celery:
    opts = JobOptions.from_settings(settings)
    app = Celery(main, broker=opts.broker_url, backend=opts.result_backend, set_as_current=False)
    transport = {
        "visibility_timeout": opts.visibility_timeout_s,
        "unacked_restore_interval": opts.restore_interval_s,
        "unacked_restore_throttle": 1,
        # A publish must not hang forever on a dead broker connection.
        "socket_timeout": opts.publish_timeout_s,
        "socket_connect_timeout": opts.publish_timeout_s,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=False,
        result_expires=opts.result_ttl_s,
        result_extended=False,
        task_time_limit=opts.task_time_limit_s + 60,  # hard stop (prefork pool only)
        task_soft_time_limit=opts.task_time_limit_s + 30,
        broker_transport_options=transport,
        result_backend_transport_options={"socket_timeout": opts.publish_timeout_s},
        broker_connection_retry_on_startup=True,
        task_default_queue=opts.jobs_queue,
        task_default_exchange=opts.jobs_queue,
        task_default_routing_key=opts.jobs_queue,
        task_queues=tuple(Queue(q, Exchange(q, type="direct"), routing_key=q)
                          for q in (opts.jobs_queue, opts.audit_queue)),
        task_routes={JOBS_TASK: {"queue": opts.jobs_queue}, AUDIT_TASK: {"queue": opts.audit_queue}},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app
