"""Celery plumbing shared by jobs and audit: the app factory, the worker entry point and the
queue metrics. It knows no task: producers send tasks by name, and the worker imports the task
modules named in `queue.task_modules` (so neither jobs nor audit imports the other)."""
