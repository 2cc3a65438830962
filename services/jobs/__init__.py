"""Asynchronous chat jobs on Celery (Redis broker + result backend).

Light on purpose: the Router imports `services.jobs.api` (and, through it, only the Celery
*client* side); worker-only code lives in `services.jobs.tasks` / `services.jobs.worker`.
"""
