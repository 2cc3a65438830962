"""Typed view of the jobs/audit knobs, including ones `services/config.py` may not define yet.

Every knob is read from the Settings object when the field exists there, else from the
environment variable pydantic-settings would use for it (`CHATGATE_JOBS__<FIELD>`), else the
default below. So adding the field to `JobsSettings`/`AuditSettings` later changes nothing here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from services.config import Settings

JOBS_TASK = "chatgate.jobs.run_job"
AUDIT_TASK = "chatgate.audit.record"


def _opt(section: Any, section_name: str, field: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    if hasattr(section, field):
        return getattr(section, field)
    raw = os.environ.get(f"CHATGATE_{section_name.upper()}__{field.upper()}")
    return default if raw is None or raw == "" else cast(raw)


def _bool(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class JobOptions:
    broker_url: str
    result_backend: str
    store_url: str  # Redis holding the job records and idempotency keys
    router_url: str
    result_ttl_s: int
    task_time_limit_s: int
    max_retries: int
    worker_concurrency: int
    worker_pool: str
    metrics_port: int
    jobs_queue: str
    audit_queue: str
    # Redis broker: an unacked message (worker died) is re-delivered after this many seconds.
    visibility_timeout_s: int
    restore_interval_s: float
    # While a job runs its worker holds a lease, refreshed every lease_ttl_s / 3.
    lease_ttl_s: int
    retry_backoff_s: float
    retry_backoff_max_s: float
    max_batch: int
    publish_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "JobOptions":
        j = settings.jobs
        backend = j.result_backend
        store_default = backend if backend.startswith(("redis://", "rediss://", "unix://")) else j.broker_url
        time_limit = int(j.task_time_limit_s)
        return cls(
            broker_url=j.broker_url,
            result_backend=backend,
            store_url=_opt(j, "jobs", "store_url", store_default),
            router_url=j.router_url.rstrip("/"),
            result_ttl_s=int(j.result_ttl_s),
            task_time_limit_s=time_limit,
            max_retries=int(j.max_retries),
            worker_concurrency=int(j.worker_concurrency),
            worker_pool=_opt(j, "jobs", "worker_pool", "threads"),
            metrics_port=_opt(j, "jobs", "metrics_port", 9101, int),
            jobs_queue=_opt(j, "jobs", "queue", "chatgate.jobs"),
            audit_queue=_opt(j, "jobs", "audit_queue", "chatgate.audit"),
            visibility_timeout_s=_opt(j, "jobs", "visibility_timeout_s", 300, int),
            restore_interval_s=_opt(j, "jobs", "restore_interval_s", 5.0, float),
            lease_ttl_s=_opt(j, "jobs", "lease_ttl_s", 30, int),
            retry_backoff_s=_opt(j, "jobs", "retry_backoff_s", 2.0, float),
            retry_backoff_max_s=_opt(j, "jobs", "retry_backoff_max_s", 60.0, float),
            max_batch=_opt(j, "jobs", "max_batch", 64, int),
            publish_timeout_s=_opt(j, "jobs", "publish_timeout_s", 5.0, float),
        )


@dataclass(frozen=True)
class AuditOptions:
    enabled: bool
    dsn: str
    store_text: bool
    sample_pass_rate: float
    hash_key: str  # non-empty: HMAC-SHA256 with this key instead of plain SHA-256
    publish_queue_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "AuditOptions":
        a = settings.audit
        return cls(
            enabled=bool(a.enabled),
            dsn=a.dsn,
            store_text=bool(a.store_text),
            sample_pass_rate=float(a.sample_pass_rate),
            hash_key=_opt(a, "audit", "hash_key", ""),
            publish_queue_size=_opt(a, "audit", "publish_queue_size", 10000, int),
        )
