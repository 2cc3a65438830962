"""Asynchronous chat jobs on the shared Celery queue (services/queue).

Domain only: records and their store (`store`, `models`), submission/lookup/cancel scoped to the
API key that created a job (`service`), and the worker task (`tasks`). The HTTP surface is
services/api/jobs.py.
"""
JOBS_TASK = "chatgate.jobs.run_job"
