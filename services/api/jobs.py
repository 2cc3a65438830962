"""The `/v1/jobs` endpoints: HTTP in, HTTP out. The jobs domain (services/jobs) does the work;
every job is scoped to `request.state.api_key_id` (set by the auth middleware; None when keys are off).

    app.include_router(create_jobs_routes(settings))
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.api.errors import APIError
from services.api.schemas import ChatCompletionRequest
from services.config import Settings
from services.jobs import errors
from services.jobs.models import TERMINAL
from services.jobs.service import Enqueue, JobService
from services.jobs.store import AsyncJobStore

_STATUS = {errors.JobNotFound: 404, errors.JobFinished: 409, errors.IdempotencyKeyReused: 409,
           errors.QueueUnavailable: 503}


def _api_error(exc: errors.JobError) -> APIError:
    return APIError(_STATUS.get(type(exc), 500), exc.message, param=exc.param, code=exc.code)


def _invalid(message: str, param: str | None = None, code: str = "invalid_request") -> APIError:
    return APIError(400, message, param=param, code=code)


def parse_job_body(raw: bytes | str, *, max_batch: int) -> tuple[str, list[dict[str, Any]]]:
    """A chat-completions request object, or a non-empty JSON array of them -> (kind, bodies).

    Raises APIError(400) on anything malformed; the bodies are what the worker POSTs (stream off).
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("We could not parse the JSON body of your request.", code="invalid_json") from None
    if isinstance(data, dict):
        kind, items = "single", [data]
    elif isinstance(data, list):
        kind, items = "list", data
        if not items:
            raise _invalid("a job list must contain at least one request")
        if len(items) > max_batch:
            raise _invalid(f"a job list may contain at most {max_batch} requests", code="batch_too_large")
    else:
        raise _invalid("the body must be a chat completion request or a list of them")
    bodies: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        prefix = f"[{i}]" if kind == "list" else ""
        if not isinstance(item, dict):
            raise _invalid(f"{prefix or 'body'}: each request must be a JSON object", prefix or None)
        try:
            req = ChatCompletionRequest.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {}
            loc = ".".join(str(p) for p in first.get("loc", ()))
            param = f"{prefix}{'.' if prefix and loc else ''}{loc}" or None
            raise _invalid(f"{param + ': ' if param else ''}{first.get('msg', 'invalid request')}", param) from None
        if req.stream:
            raise _invalid("streaming is not supported for jobs; omit `stream` or set it to false",
                           f"{prefix}{'.' if prefix else ''}stream", code="stream_not_supported")
        bodies.append({k: v for k, v in item.items() if k not in ("stream", "stream_options")})
    return kind, bodies


def create_jobs_routes(settings: Settings, *, enqueue: Enqueue | None = None,
                       store: AsyncJobStore | None = None) -> APIRouter:
    """`enqueue`/`store` are injectable for tests; by default Celery and the configured Redis."""
    service = JobService(settings, enqueue=enqueue, store=store)
    router = APIRouter(tags=["jobs"])

    def owner(request: Request) -> str | None:
        return getattr(request.state, "api_key_id", None)

    @router.post("/v1/jobs", status_code=202)
    async def submit_job(request: Request, idempotency_key: str | None = Header(default=None)) -> JSONResponse:
        kind, bodies = parse_job_body(await request.body(), max_batch=settings.jobs.max_batch)
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
            raise _invalid("Idempotency-Key must be 1 to 255 characters", "Idempotency-Key", "invalid_idempotency_key")
        try:
            sub = await service.submit(owner(request), kind, bodies, idempotency_key)
        except errors.JobError as exc:
            raise _api_error(exc) from None
        headers = {"Location": f"/v1/jobs/{sub.job_id}"}
        if not sub.replayed:
            return JSONResponse(sub.job.view(), status_code=202, headers=headers)
        headers["Idempotent-Replayed"] = "true"
        if sub.job is None:  # claimed, record not written yet: same answer as the first submit
            return JSONResponse({"id": sub.job_id, "object": "chat.completion.job", "status": "queued"},
                                status_code=202, headers=headers)
        return JSONResponse(sub.job.view(), status_code=200 if sub.job.status in TERMINAL else 202, headers=headers)

    @router.get("/v1/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> JSONResponse:
        try:
            return JSONResponse((await service.get(owner(request), job_id)).view())
        except errors.JobError as exc:
            raise _api_error(exc) from None

    @router.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str, request: Request) -> JSONResponse:
        try:
            rec, done = await service.cancel(owner(request), job_id)
        except errors.JobError as exc:
            raise _api_error(exc) from None
        return JSONResponse(rec.view(), status_code=200 if done else 202)

    return router
