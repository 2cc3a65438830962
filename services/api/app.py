"""The FastAPI app: OpenAI-compatible routes over a backend (the Router replica, or a fake in tests).

This is the only place that speaks HTTP: requests become ChatTurns, the pipeline's answers and
events become OpenAI JSON and SSE, pipeline errors become statuses in OpenAI's error shape.
"""
from __future__ import annotations

import hashlib
import json
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from services.api import responses
from services.api.admission import Admission
from services.api.errors import APIError, error_response, install_error_handlers
from services.api.limits import limit_body_size
from services.api.schemas import ChatCompletionRequest, ModerationRequest
from services.api.turns import build_turn
from services.config import Settings
from services.moderation.base import ModerationVerdict
from services.observability.metrics import PipelineMetrics
from services.pipeline.chat import ChatPipeline
from services.pipeline.errors import GenerationUnavailable, InvalidTurn, ModerationUnavailable


class Backend(Protocol):
    settings: Settings
    pipeline: ChatPipeline
    metrics: PipelineMetrics

    async def moderate(self, texts: list[str]) -> list[ModerationVerdict]: ...

    async def readiness(self) -> dict[str, Any]: ...

    async def engine_stats(self) -> dict[str, Any]: ...


def create_app(backend: Backend, extra_routers: list | None = None) -> FastAPI:
    settings = backend.settings
    model_name = settings.generator.served_model_name
    limits = settings.api.limits
    admission = Admission(settings.api.admission, backend.metrics)
    app = FastAPI(title="chatgate", version="0.1.0")
    install_error_handlers(app)
    _map_pipeline_errors(app)
    _require_api_keys(app, settings.api.key_set())
    limit_body_size(app, limits.max_body_bytes)
    app.state.admission = admission

    def check_model(model: str | None) -> None:
        if model not in (None, model_name):
            raise APIError(404, f"The model `{model}` does not exist. Available: `{model_name}`.", param="model", code="model_not_found")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        check_model(body.model)
        turn = build_turn(body, request, backend.settings)  # read per request: reconfigure may swap it
        if not body.stream:
            async with admission.slot():
                answer = await backend.pipeline.complete(turn)
            return JSONResponse(responses.completion(answer, model_name))
        await admission.acquire()
        try:
            events = await backend.pipeline.stream(turn)  # 4xx/503 raised here, before any byte
        except BaseException:
            admission.release()
            raise
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = responses.stream_chunks(events, turn.completion_id, model_name, turn.n, include_usage)
        return EventSourceResponse(_sse(chunks, admission), ping=backend.settings.streaming.keepalive_s)

    @app.post("/v1/moderations")
    async def moderations(body: ModerationRequest):
        texts = body.texts()
        if len(texts) > limits.max_moderation_inputs:
            raise APIError(400, f"at most {limits.max_moderation_inputs} inputs are allowed", param="input", code="invalid_value")
        if any(len(t) > limits.max_moderation_chars for t in texts):
            raise APIError(400, f"each input may have at most {limits.max_moderation_chars} characters",
                           param="input", code="invalid_value")
        verdicts = await backend.moderate(texts)
        return {
            "id": f"modr-{time.time_ns():x}",
            "model": "chatgate-moderation",
            "results": [v.model_dump() for v in verdicts],
        }

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "chatgate"}]}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        state = await backend.readiness()
        ready = state["model_loaded"] and state["classifier_loaded"]
        return JSONResponse({"ready": ready, **state}, status_code=200 if ready else 503)

    @app.get("/admin/engine")
    async def engine_stats():
        """Operator view of the generator: requests started and still running in vLLM."""
        return {**await backend.engine_stats(), "admission": {"active": admission.active, "waiting": admission.waiting}}

    _include_jobs(app, settings)
    for router in extra_routers or []:
        app.include_router(router)
    return app


def _sse(chunks: AsyncIterator[dict[str, Any]], admission: Admission) -> AsyncIterator[dict[str, str]]:
    """SSE frames; the admission slot is held until the stream ends (or is dropped unstarted)."""
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            admission.release()

    async def frames() -> AsyncIterator[dict[str, str]]:
        try:
            async for chunk in chunks:
                yield {"data": json.dumps(chunk, separators=(",", ":"))}
            yield {"data": "[DONE]"}
        finally:
            release()
            await chunks.aclose()

    gen = frames()
    weakref.finalize(gen, release)  # a response that never started streaming still frees its slot
    return gen


def _map_pipeline_errors(app: FastAPI) -> None:
    @app.exception_handler(InvalidTurn)
    async def _invalid(_: Request, exc: InvalidTurn) -> JSONResponse:
        return error_response(400, exc.message, param=exc.param, code=exc.code)

    async def _unavailable(_: Request, exc: GenerationUnavailable | ModerationUnavailable) -> JSONResponse:
        resp = error_response(503, exc.message, code=exc.code)
        resp.headers["Retry-After"] = "2"
        return resp

    app.add_exception_handler(GenerationUnavailable, _unavailable)
    app.add_exception_handler(ModerationUnavailable, _unavailable)


def api_key_id(token: str) -> str:
    """A stable, non-reversible id of an API key: what jobs, feedback and audit rows are scoped by."""
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _require_api_keys(app: FastAPI, keys: set[str]) -> None:
    """Bearer-key check on /v1/* when keys are configured (health endpoints stay open).
    Sets `request.state.api_key_id` (None when keys are off) for per-tenant scoping."""

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        request.state.api_key_id = None
        if keys and (request.url.path.startswith("/v1/") or request.url.path.startswith("/admin/")):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token not in keys:
                return error_response(401, "Incorrect or missing API key.", code="invalid_api_key")
            request.state.api_key_id = api_key_id(token)
        return await call_next(request)


def _include_jobs(app: FastAPI, settings: Settings) -> None:
    from services.api.jobs import create_jobs_routes

    app.include_router(create_jobs_routes(settings))


__all__ = ["Backend", "create_app", "error_response"]
