"""`GET /` (the chat page), its two static files, and `POST /v1/feedback`.

The app includes this router; its auth middleware sets `request.state.api_key_id`, which scopes
feedback to the key that made the completion. The page itself is public (it holds no data; the
API key is typed into it and kept in the tab's sessionStorage).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from services.api.errors import APIError
from services.config import Settings
from services.feedback.metrics import FeedbackMetrics
from services.feedback.recorder import CompletionRecorder, feedback_dsn
from services.feedback.records import FeedbackRequest
from services.feedback.service import FeedbackError, FeedbackService
from services.feedback.store import FeedbackStore

STATIC = Path(__file__).resolve().parent / "static"
_ASSETS = {"chat.js": "text/javascript", "chat.css": "text/css"}
# Same-origin only: the page talks to this server's own /v1 endpoints and loads nothing else.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def create_web_routes(settings: Settings, recorder: CompletionRecorder | None = None, *,
                      store: FeedbackStore | None = None, metrics: FeedbackMetrics | None = None) -> APIRouter:
    router = APIRouter()
    # Its own connection: feedback reads never queue behind the recorder's batch writes.
    store = store or FeedbackStore(recorder.store.dsn if recorder is not None else feedback_dsn(settings))
    service = FeedbackService(settings, store, metrics or (recorder.metrics if recorder else FeedbackMetrics()),
                              recorder)

    @router.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=_HEADERS)

    @router.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in _ASSETS:  # a fixed list: no path ever reaches the file system from the URL
            raise APIError(404, f"No static file `{name}`.", code="not_found")
        return FileResponse(STATIC / name, media_type=_ASSETS[name], headers=_HEADERS)

    @router.post("/v1/feedback")
    async def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
        """Thumbs up/down or a 1-5 score on one answer, or a preference among answers to one prompt."""
        if not settings.feedback.enabled:
            raise APIError(404, "Feedback is switched off on this server.", code="feedback_disabled")
        try:
            return await run_in_threadpool(service.submit, body, getattr(request.state, "api_key_id", None))
        except FeedbackError as exc:
            raise APIError(exc.status, exc.message, param=exc.param, code=exc.code) from exc
        except psycopg.Error as exc:
            raise APIError(503, "Feedback storage is unavailable. Please retry.", code="feedback_unavailable") from exc

    return router
