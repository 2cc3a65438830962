"""The worker's Celery app with every task registered (job runs and audit writes).

`celery -A services.jobs.worker_app:app worker ...` works too; `python -m services.jobs.worker`
adds the metrics server and the configured pool/concurrency.
"""
from __future__ import annotations

from services.audit import tasks as audit_tasks
from services.config import load_settings
from services.jobs import tasks as job_tasks
from services.jobs.celery_app import make_celery

settings = load_settings()
app = make_celery(settings)
job_tasks.register(app, settings)
audit_tasks.register(app, settings)
