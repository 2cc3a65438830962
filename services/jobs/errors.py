"""What the jobs domain raises; services/api/jobs.py maps each to an HTTP status."""
from __future__ import annotations


class JobError(Exception):
    code = "job_error"

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message, self.param = message, param


class JobNotFound(JobError):
    """Unknown, expired, or created with another API key (tenants never see each other's jobs)."""

    code = "job_not_found"


class JobFinished(JobError):
    code = "job_finished"


class IdempotencyKeyReused(JobError):
    code = "idempotency_key_reused"


class QueueUnavailable(JobError):
    """Redis or the broker did not answer: nothing was recorded or enqueued; retry later."""

    code = "jobs_unavailable"
