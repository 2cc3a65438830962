"""Submitting, reading and cancelling jobs, each scoped to the API key that created it.

A job of another key answers exactly like a missing one (JobNotFound), so nothing about one
tenant's jobs is visible to another. The Celery publish (a blocking kombu call) runs in a
worker thread with bounded socket timeouts: submission never blocks the event loop.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from services.config import Settings
from services.jobs import JOBS_TASK
from services.jobs.errors import IdempotencyKeyReused, JobFinished, JobNotFound, QueueUnavailable
from services.jobs.models import JobRecord, body_hash, idempotency_digest
from services.jobs.store import AsyncJobStore

log = logging.getLogger("chatgate.jobs.service")

Enqueue = Callable[[str, list[dict[str, Any]]], None]


def store_url(settings: Settings) -> str:
    backend = settings.queue.result_backend
    default = backend if backend.startswith(("redis://", "rediss://", "unix://")) else settings.queue.broker_url
    return settings.jobs.store_url or default


def enqueuer(app: Any, queue: str) -> Enqueue:
    """Publish a job's task on `app`. The task id is the job id: the reconciler finds the message by it."""
    from services.queue.app import PUBLISH_RETRY

    def enqueue(job_id: str, bodies: list[dict[str, Any]]) -> None:
        app.send_task(JOBS_TASK, args=[job_id, bodies], task_id=job_id, queue=queue, retry=True,
                      retry_policy=PUBLISH_RETRY)

    return enqueue


def celery_enqueuer(settings: Settings) -> Enqueue:
    from services.queue.app import make_celery

    return enqueuer(make_celery(settings.queue), settings.queue.jobs_queue)


@dataclass
class Submitted:
    job: JobRecord | None  # None: an idempotent replay whose record is not written yet
    job_id: str
    replayed: bool


class JobService:
    def __init__(self, settings: Settings, *, enqueue: Enqueue | None = None, store: AsyncJobStore | None = None):
        self.settings = settings
        self._enqueue = enqueue
        self._store = store

    @property
    def store(self) -> AsyncJobStore:
        if self._store is None:
            self._store = AsyncJobStore(store_url(self.settings), self.settings.jobs.result_ttl_s)
        return self._store

    async def submit(self, owner: str | None, kind: str, bodies: list[dict[str, Any]],
                     idempotency_key: str | None = None) -> Submitted:
        digest = idempotency_digest(owner, idempotency_key) if idempotency_key else None
        bhash = body_hash(bodies, kind)
        rec = JobRecord(id=f"job-{uuid.uuid4().hex}", status="queued", kind=kind, total=len(bodies),
                        created_at=time.time(), owner=owner)
        try:
            created, existing = await self.store.create(rec, bodies=bodies, idem_digest=digest,
                                                        body_hash=bhash)
        except Exception as exc:  # Redis down
            log.warning("job store unavailable: %r", exc)
            raise QueueUnavailable("the job queue is unavailable, retry later") from None
        if not created:
            return await self._replay(existing, bhash)
        if self._enqueue is None:
            self._enqueue = celery_enqueuer(self.settings)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._enqueue, rec.id, bodies),
                                   timeout=self.settings.queue.publish_timeout_s * 3)
        except Exception as exc:
            log.warning("could not enqueue %s: %r", rec.id, exc)
            try:
                await self.store.forget(rec.id, digest)
            except Exception:
                pass
            raise QueueUnavailable("the job queue is unavailable, retry later") from None
        return Submitted(rec, rec.id, replayed=False)

    async def _replay(self, existing: str, bhash: str) -> Submitted:
        try:
            claim = json.loads(existing)
        except ValueError:
            claim = {}
        if claim.get("body_hash") != bhash:
            raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request body",
                                       param="Idempotency-Key")
        job_id = claim.get("job_id", "")
        return Submitted(await self.store.get(job_id), job_id, replayed=True)

    async def get(self, owner: str | None, job_id: str) -> JobRecord:
        try:
            rec = await self.store.get(job_id)
        except Exception as exc:
            log.warning("job store unavailable: %r", exc)
            raise QueueUnavailable("the job store is unavailable, retry later") from None
        if rec is None or not rec.visible_to(owner):
            raise JobNotFound(f"no job with id {job_id!r}", param="job_id")
        return rec

    async def cancel(self, owner: str | None, job_id: str) -> tuple[JobRecord, bool]:
        """Returns (job, done): done=False when a running job will stop after its item in flight."""
        await self.get(owner, job_id)  # ownership first: the CAS below must not touch others' jobs
        ok, cur = await self.store.cas(job_id, "queued", "cancelled", finished_at=repr(time.time()),
                                       cancel_requested="1")
        if cur is None:
            raise JobNotFound(f"no job with id {job_id!r}", param="job_id")
        if ok:  # the queued message stays in the broker; the worker drops it when it sees the status
            return await self.get(owner, job_id), True
        if cur == "running":  # items not yet started are cancelled by the worker
            await self.store.request_cancel(job_id)
            return await self.get(owner, job_id), False
        raise JobFinished(f"job {job_id} already finished ({cur}); nothing to cancel", param="job_id")
