"""The FastAPI app: OpenAI-compatible routes over a backend (the Router replica, or a fake in tests)."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from services.api.errors import APIError, error_response, install_error_handlers
from services.api.schemas import ChatCompletionRequest, ModerationRequest
from services.config import Settings
from services.moderation.base import ModerationVerdict
from services.pipeline.chat import ChatPipeline
from services.templates.language import pick_language
from services.templates.store import load_seed


class Backend(Protocol):
    settings: Settings
    pipeline: ChatPipeline

    async def moderate(self, texts: list[str]) -> list[ModerationVerdict]: ...

    async def readiness(self) -> dict[str, Any]: ...

    async def engine_stats(self) -> dict[str, Any]: ...


def create_app(backend: Backend) -> FastAPI:
    settings = backend.settings
    model_name = settings.generator.served_model_name
    languages = set(load_seed(settings.templates.seed_file))
    app = FastAPI(title="chatgate", version="0.1.0")
    install_error_handlers(app)
    _require_api_keys(app, settings.api.key_set())

    def check_model(model: str | None) -> None:
        if model not in (None, model_name):
            raise APIError(404, f"The model `{model}` does not exist. Available: `{model_name}`.", param="model", code="model_not_found")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        check_model(body.model)
        language = pick_language(body.language, request.headers.get("accept-language"), languages, settings.templates.default_language)
        client_id = request.headers.get("x-request-id")
        if not body.stream:
            return JSONResponse(await backend.pipeline.complete(body, language, model_name, client_id))
        chunks = await backend.pipeline.stream(body, language, model_name, client_id)  # 4xx raised here, before any byte
        return EventSourceResponse(_sse(chunks), ping=15)

    @app.post("/v1/moderations")
    async def moderations(body: ModerationRequest):
        verdicts = await backend.moderate(body.texts())
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
        return await backend.engine_stats()

    _include_jobs(app, settings)
    return app


async def _sse(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, str]]:
    async for chunk in chunks:
        yield {"data": json.dumps(chunk, separators=(",", ":"))}
    yield {"data": "[DONE]"}


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
    from services.api.jobs import create_jobs_router

    app.include_router(create_jobs_router(settings))


__all__ = ["Backend", "create_app", "error_response"]
