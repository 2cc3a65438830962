"""Worker entry point: `python -m services.jobs.worker [options]`.

Starts one Celery worker process consuming the jobs and audit queues, plus a Prometheus HTTP
server (default port 9101; 0 turns it off). Run several (with distinct --metrics-port and
--hostname) for more workers; --concurrency sets the threads per worker.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys


def main(argv: list[str] | None = None) -> None:
    from services.config import load_settings
    from services.jobs.options import JobOptions

    opts = JobOptions.from_settings(load_settings())
    p = argparse.ArgumentParser(prog="python -m services.jobs.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=opts.worker_concurrency)
    p.add_argument("--pool", default=opts.worker_pool, choices=["threads", "prefork", "solo"],
                   help="threads (default; the tasks wait on HTTP) | prefork | solo")
    p.add_argument("--metrics-port", type=int, default=opts.metrics_port)
    p.add_argument("--queues", default=f"{opts.jobs_queue},{opts.audit_queue}")
    p.add_argument("--hostname", default=f"chatgate-{os.getpid()}@{socket.gethostname()}")
    p.add_argument("--loglevel", default=os.environ.get("CHATGATE_LOG_LEVEL", "INFO"))
    args = p.parse_args(argv)

    logging.basicConfig(level=args.loglevel.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from services.jobs import metrics
    from services.jobs.worker_app import app

    metrics.install_signal_handlers()
    if args.metrics_port:
        from prometheus_client import start_http_server

        metrics.register_queue_collector(opts.broker_url, args.queues.split(","))
        start_http_server(args.metrics_port)
        logging.getLogger("chatgate.jobs.worker").info("metrics on :%d/metrics", args.metrics_port)
    app.worker_main([
        "worker", f"--concurrency={args.concurrency}", f"--pool={args.pool}", f"--queues={args.queues}",
        f"--hostname={args.hostname}", f"--loglevel={args.loglevel}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ])


if __name__ == "__main__":
    main()
