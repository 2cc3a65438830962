"""Worker entry point: `python -m services.queue.worker [options]`.

One Celery worker process consuming the jobs and audit queues, plus a Prometheus HTTP server
(default port 9101; 0 turns it off). The tasks come from the modules in `queue.task_modules`,
each with `register(app, settings)`. Run several (distinct --metrics-port and --hostname) for
more workers; --concurrency sets the threads per worker.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys

from celery import Celery

from services.config import Settings, load_settings
from services.queue.app import make_celery


def build_app(settings: Settings) -> Celery:
    """The worker's Celery app with every configured task module registered."""
    app = make_celery(settings.queue)
    for name in settings.queue.task_modules:
        importlib.import_module(name).register(app, settings)
    return app


def main(argv: list[str] | None = None) -> None:
    settings = load_settings()
    q = settings.queue
    p = argparse.ArgumentParser(prog="python -m services.queue.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=q.worker_concurrency)
    p.add_argument("--pool", default=q.worker_pool, choices=["threads", "prefork", "solo"],
                   help="threads (default; the tasks wait on HTTP) | prefork | solo")
    p.add_argument("--metrics-port", type=int, default=q.metrics_port)
    p.add_argument("--queues", default=f"{q.jobs_queue},{q.audit_queue}")
    p.add_argument("--hostname", default=f"chatgate-{os.getpid()}@{socket.gethostname()}")
    p.add_argument("--loglevel", default=os.environ.get("CHATGATE_LOG_LEVEL", "INFO"))
    args = p.parse_args(argv)

    logging.basicConfig(level=args.loglevel.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from services.queue import metrics

    app = build_app(settings)
    metrics.install_signal_handlers()
    if args.metrics_port:
        from prometheus_client import start_http_server

        metrics.register_queue_collector(q.broker_url, args.queues.split(","))
        start_http_server(args.metrics_port)
        logging.getLogger("chatgate.queue.worker").info("metrics on :%d/metrics", args.metrics_port)
    app.worker_main([
        "worker", f"--concurrency={args.concurrency}", f"--pool={args.pool}", f"--queues={args.queues}",
        f"--hostname={args.hostname}", f"--loglevel={args.loglevel}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ])


if __name__ == "__main__":
    main()
