"""The `/v1/jobs` endpoints, mounted on the Router: `app.include_router(create_jobs_router(settings))`.

Submission never blocks the event loop: job records go through an asyncio Redis client and the
Celery publish (a blocking kombu call) runs in a worker thread with a bounded socket timeout.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Callable

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.api.errors import APIError
from services.config import Settings
from services.jobs.models import TERMINAL, JobRecord, idempotency_digest, parse_job_body
from services.jobs.options import JOBS_TASK, JobOptions
from services.jobs.store import AsyncJobStore

log = logging.getLogger("chatgate.jobs.api")

Enqueue = Callable[[str, list[dict[str, Any]]], None]


def _celery_enqueuer(settings: Settings, opts: JobOptions) -> Enqueue:
    from services.jobs.celery_app import make_celery

    app = make_celery(settings)

    def enqueue(job_id: str, bodies: list[dict[str, Any]]) -> None:
        app.send_task(
            JOBS_TASK, args=[job_id, bodies], task_id=job_id, queue=opts.jobs_queue,
            retry=True, retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2,
                                      "interval_max": 0.5},
        )

    return enqueue


def create_jobs_router(settings: Settings, *, enqueue: Enqueue | None = None,
                       store: AsyncJobStore | None = None) -> APIRouter:
    """`enqueue`/`store` are injectable for tests; by default Celery and the configured Redis."""
    opts = JobOptions.from_settings(settings)
    router = APIRouter(tags=["jobs"])
    state: dict[str, Any] = {"store": store, "enqueue": enqueue}

    def _store() -> AsyncJobStore:
        if state["store"] is None:
            state["store"] = AsyncJobStore(opts.store_url, opts.result_ttl_s)
        return state["store"]

    def _enqueue() -> Enqueue:
        if state["enqueue"] is None:
            state["enqueue"] = _celery_enqueuer(settings, opts)
        return state["enqueue"]

    @router.post("/v1/jobs", status_code=202)
    async def submit_job(request: Request, idempotency_key: str | None = Header(default=None)) -> JSONResponse:
        parsed = parse_job_body(await request.body(), max_batch=opts.max_batch)
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
            raise APIError(400, "Idempotency-Key must be 1 to 255 characters", param="Idempotency-Key",
                           code="invalid_idempotency_key")
        digest = idempotency_digest(idempotency_key) if idempotency_key else None
        job_id = f"job-{uuid.uuid4().hex}"
        rec = JobRecord(id=job_id, status="queued", kind=parsed.kind, total=len(parsed.bodies),
                        created_at=time.time())
        st = _store()
        try:
            created, existing = await st.create(rec, idem_digest=digest, body_hash=parsed.body_hash)
        except Exception as exc:  # Redis down
            log.warning("job store unavailable: %r", exc)
            raise APIError(503, "the job queue is unavailable, retry later", code="jobs_unavailable") from None
        if not created:
            try:
                claim = json.loads(existing)
            except ValueError:
                claim = {}
            if claim.get("body_hash") != parsed.body_hash:
                raise APIError(409, "this Idempotency-Key was already used with a different request body",
                               param="Idempotency-Key", code="idempotency_key_reused")
            prior = await st.get(claim.get("job_id", ""))
            if prior is None:  # claim exists but the job is gone or not yet written: same answer
                return JSONResponse({"id": claim.get("job_id"), "object": "chat.completion.job",
                                     "status": "queued"}, status_code=202,
                                    headers={"Idempotent-Replayed": "true"})
            return JSONResponse(prior.view(), status_code=200 if prior.status in TERMINAL else 202,
                                headers={"Idempotent-Replayed": "true", "Location": f"/v1/jobs/{prior.id}"})
        try:
            await asyncio.wait_for(asyncio.to_thread(_enqueue(), job_id, parsed.bodies),
                                   timeout=opts.publish_timeout_s * 3)
        except Exception as exc:
            log.warning("could not enqueue %s: %r", job_id, exc)
            try:
                await st.forget(job_id, digest)
            except Exception:
                pass
            raise APIError(503, "the job queue is unavailable, retry later", code="jobs_unavailable") from None
        return JSONResponse(rec.view(), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})

    @router.get("/v1/jobs/{job_id}")
    async def get_job(job_id: str) -> JSONResponse:
        rec = await _get_or_404(job_id)
        return JSONResponse(rec.view())

    @router.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str) -> JSONResponse:
        st = _store()
        ok, cur = await st.cas(job_id, "queued", "cancelled", finished_at=repr(time.time()), cancel_requested="1")
        if cur is None:
            raise APIError(404, f"no job with id {job_id!r}", param="job_id", code="job_not_found")
        if ok:
            # The queued message stays in the broker; the worker drops it when it sees the status.
            return JSONResponse((await _get_or_404(job_id)).view())
        if cur == "running":
            # Items not yet started are cancelled by the worker; the one in flight finishes.
            await st.request_cancel(job_id)
            return JSONResponse((await _get_or_404(job_id)).view(), status_code=202)
        raise APIError(409, f"job {job_id} already finished ({cur}); nothing to cancel", param="job_id",
                       code="job_finished")

    async def _get_or_404(job_id: str) -> JobRecord:
        try:
            rec = await _store().get(job_id)
        except Exception as exc:
            log.warning("job store unavailable: %r", exc)
            raise APIError(503, "the job store is unavailable, retry later", code="jobs_unavailable") from None
        if rec is None:
            raise APIError(404, f"no job with id {job_id!r}", param="job_id", code="job_not_found")
        return rec

    return router
