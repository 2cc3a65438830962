"""Worker-side job task. Registered on the worker's Celery app by `register(app, settings)`."""
from __future__ import annotations

import logging
import random
import time
import uuid
from typing import Any

import httpx
import redis
from celery import Celery, signals
from celery.exceptions import Reject, Retry

from services.config import JobsSettings, Settings
from services.jobs import JOBS_TASK, metrics
from services.jobs.models import TERMINAL, moderation_outcome
from services.jobs.pipeline import ItemFailed, RetryableError, call_chat
from services.jobs.reconcile import Reconciler
from services.jobs.service import enqueuer, store_url
from services.jobs.store import JobStore, LeaseHeartbeat

log = logging.getLogger("chatgate.jobs.worker")


def backoff_s(retries: int, opts: JobsSettings, retry_after: float | None) -> float:
    """Exponential backoff with jitter, at least Retry-After, at most retry_backoff_max_s."""
    base = min(opts.retry_backoff_max_s, opts.retry_backoff_s * (2 ** retries))
    delay = base * (0.5 + random.random() / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, opts.retry_backoff_max_s)


def _item(index: int, status: str, *, response: Any = None, error: Any = None) -> dict[str, Any]:
    return {
        "index": index, "status": status, "response": response,
        "moderation": moderation_outcome(response) if isinstance(response, dict) else None,
        "error": error,
    }


# Longest pause before a message is requeued: it comes straight back, so no hot loop on an outage.
REQUEUE_PAUSE_MAX_S = 5.0


def requeue(reason: BaseException, pause_s: float) -> Reject:
    """Hand the message back to the broker: Reject(requeue=True) moves it from kombu's `unacked`
    to the queue in one Redis transaction; with the broker down it stays in `unacked` (restored
    after the visibility timeout, or re-published by the reconciler). Never deleted."""
    time.sleep(min(max(pause_s, 0.0), REQUEUE_PAUSE_MAX_S))
    return Reject(reason, requeue=True)


def retry_keeping_message(task, *, countdown: float, exc: BaseException, max_retries: int) -> BaseException:
    """task.retry(), but a failed re-publish requeues the message instead of deleting it.

    Celery turns a failed retry publish into Reject(requeue=False) (Task.retry), which under
    acks_late removes the only copy of the message from kombu's `unacked`.
    """
    try:
        return task.retry(countdown=countdown, exc=exc, max_retries=max_retries)
    except Reject as rej:
        log.warning("retry publish failed (%r); requeueing the message", rej.reason)
        raise requeue(rej.reason, countdown) from None


def router_api_key(settings: Settings) -> str:
    """The worker's bearer key for the Router: jobs.router_api_key, else the first of api.keys."""
    return settings.jobs.router_api_key or next(iter(sorted(settings.api.key_set())), "")


def register(app: Celery, settings: Settings) -> None:
    opts = settings.jobs
    jobs_queue = settings.queue.jobs_queue
    router_url = opts.router_url.rstrip("/")
    api_key = router_api_key(settings)
    store = JobStore(store_url(settings), opts.result_ttl_s)
    http = httpx.Client(limits=httpx.Limits(max_connections=max(4, settings.queue.worker_concurrency * 2)))
    # Celery's result summary lives as long as the job record; hard limits apply to prefork only.
    app.conf.update(result_expires=opts.result_ttl_s, task_time_limit=opts.task_time_limit_s + 60,
                    task_soft_time_limit=opts.task_time_limit_s + 30)

    @app.task(name=JOBS_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
              max_retries=opts.max_retries)
    def run_job(self, job_id: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            return _run(self, job_id, bodies)
        except redis.RedisError as exc:
            # Job store unreachable: try again later rather than lose the job.
            raise retry_keeping_message(self, exc=exc, countdown=backoff_s(self.request.retries, opts, None),
                                        max_retries=opts.max_retries + 10)
        except (Retry, Reject):
            raise
        except Exception as exc:
            # A bug, not an outage: record it so the job does not look 'running' forever.
            log.exception("job %s crashed", job_id)
            try:
                store.cas(job_id, "queued,running", "failed", finished_at=repr(time.time()),
                          last_error=f"internal_error: {type(exc).__name__}: {exc}"[:500])
                metrics.JOBS_FINISHED.labels(status="failed").inc()
            except redis.RedisError:
                pass
            raise

    def _run(task, job_id: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
        rec = store.get(job_id)
        if rec is None:
            log.warning("job %s has no record (expired?); dropping", job_id)
            return {"job_id": job_id, "status": "expired"}
        if rec.status in TERMINAL:
            return {"job_id": job_id, "status": rec.status}
        token = uuid.uuid4().hex
        if not store.acquire_lease(job_id, token, opts.lease_ttl_s):
            # Another delivery of this job is running (or its dead worker's lease has not run out
            # yet). Check back after a lease period, so the job survives if that worker dies.
            try:
                task.app.send_task(JOBS_TASK, args=[job_id, bodies], task_id=job_id, queue=jobs_queue,
                                   countdown=opts.lease_ttl_s)
            except Exception as exc:  # not a job failure: another worker may be running it
                raise requeue(exc, opts.lease_ttl_s) from None
            metrics.JOB_DEFERRED.inc()
            return {"job_id": job_id, "status": "deferred"}
        with LeaseHeartbeat(store, job_id, token, opts.lease_ttl_s):
            now = time.time()
            extra = {"attempts": str(rec.attempts + 1)}
            if rec.started_at is None:
                extra["started_at"] = repr(now)
            ok, cur = store.cas(job_id, "queued,running", "running", **extra)
            if not ok:
                return {"job_id": job_id, "status": cur or "expired"}
            deadline = time.monotonic() + opts.task_time_limit_s
            done = store.done_indices(job_id)
            for index, body in enumerate(bodies):
                if index in done:
                    continue
                if store.cancel_requested(job_id):
                    _put(job_id, index, _item(index, "cancelled"))
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 1:
                    _put(job_id, index, _item(index, "failed", error={
                        "code": "time_limit", "message": f"task time limit ({opts.task_time_limit_s}s) reached"}))
                    continue
                try:
                    response = call_chat(http, router_url, body, request_id=f"{job_id}-{index}",
                                         timeout_s=remaining, api_key=api_key)
                except RetryableError as exc:
                    if task.request.retries < opts.max_retries:
                        delay = backoff_s(task.request.retries, opts, exc.retry_after)
                        store.set_fields(job_id, last_error=str(exc), retries=task.request.retries + 1)
                        log.info("job %s item %d: %s; retry in %.1fs", job_id, index, exc, delay)
                        raise retry_keeping_message(task, countdown=delay, exc=exc, max_retries=opts.max_retries)
                    _put(job_id, index, _item(index, "failed", error={
                        "code": "upstream_unavailable",
                        "message": f"{exc} (gave up after {opts.max_retries} retries)"}))
                    continue
                except TimeoutError as exc:
                    _put(job_id, index, _item(index, "failed", error={"code": "time_limit", "message": str(exc)}))
                    continue
                except ItemFailed as exc:
                    _put(job_id, index, _item(index, "failed", error=exc.error()))
                    continue
                _put(job_id, index, _item(index, "succeeded", response=response))
            final = store.get(job_id)
            if final is None:
                return {"job_id": job_id, "status": "expired"}
            status = "cancelled" if final.cancelled else ("failed" if final.failed else "succeeded")
            first_error = next((r.get("error") for r in final.results.values() if r.get("error")), None)
            fields = {"finished_at": repr(time.time())}
            if status == "failed" and first_error:
                fields["last_error"] = f"{first_error.get('code')}: {first_error.get('message')}"
            store.cas(job_id, "running", status, **fields)
            store.touch(job_id)
            metrics.JOBS_FINISHED.labels(status=status).inc()
            return {"job_id": job_id, "status": status, "total": final.total,
                    "succeeded": final.succeeded, "failed": final.failed, "cancelled": final.cancelled}

    _start_reconciler(app, settings, store)

    def _put(job_id: str, index: int, item: dict[str, Any]) -> None:
        if store.put_result(job_id, index, item):
            outcome = item["status"]
            if outcome == "succeeded" and (item.get("moderation") or {}).get("outcome") == "blocked":
                outcome = "blocked"
            metrics.JOB_ITEMS.labels(outcome=outcome).inc()


def _start_reconciler(app: Celery, settings: Settings, store: JobStore) -> None:
    """Run the reconciler in this worker once it is ready (not when the app is merely built)."""
    opts, q = settings.jobs, settings.queue
    if opts.reconcile_interval_s <= 0:
        return
    if not q.broker_url.startswith(("redis://", "rediss://", "unix://")):
        log.warning("reconciler off: it reads a Redis broker, not %s", q.broker_url.split(":", 1)[0])
        return
    unacked_key = (app.conf.broker_transport_options or {}).get("unacked_key", "unacked")
    broker = redis.Redis.from_url(q.broker_url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5)
    rec = Reconciler(store, broker, enqueuer(app, q.jobs_queue), queue=q.jobs_queue, unacked_key=unacked_key,
                     after_s=opts.reconcile_after_s, interval_s=opts.reconcile_interval_s)

    @signals.worker_ready.connect(weak=False)
    def _ready(sender=None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            rec.start()

    @signals.worker_shutdown.connect(weak=False)
    def _shutdown(sender=None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            rec.stop()
