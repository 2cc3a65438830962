"""A stand-in for the chatgate Router, for queue-mechanics tests (run in a subprocess).

- `POST /v1/chat/completions`: answers in the documented ChatCompletion shape. A user text
  containing "ABUSIVE" is "blocked at input": finish_reason content_filter, `chatgate_moderation`,
  the template text, and an audit event published through the real `AuditPublisher` — exactly
  what the real Router is meant to do.
- `/v1/jobs*`: the real `create_jobs_routes(settings)` with the real error handlers, behind the
  real API-key middleware (on when CHATGATE_API__KEYS is set).
- `POST /_control` {"delay_s", "fail_status", "fail_times", "retry_after"}; `GET /_stats`.

    python tests/queue/standin.py --port 8765   (settings from CHATGATE_* env)
"""
from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.api.app import _require_api_keys
from services.api.errors import APIError, install_error_handlers
from services.api.schemas import ChatCompletionRequest
from services.audit import AuditEvent, AuditPublisher
from services.config import load_settings
from services.api.jobs import create_jobs_routes

TEMPLATE_TEXT = "I can't help with that request."

settings = load_settings()
app = FastAPI()
install_error_handlers(app)
_require_api_keys(app, settings.api.key_set())  # the real auth middleware: bearer keys, api_key_id
app.include_router(create_jobs_routes(settings))
publisher = AuditPublisher(settings)
control: dict[str, Any] = {"delay_s": 0.0, "fail_status": 0, "fail_times": 0, "retry_after": None,
                           "unavailable_times": 0}
calls: list[dict[str, Any]] = []


@app.post("/_control")
async def set_control(request: Request) -> dict:
    control.update(await request.json())
    return control


@app.get("/_stats")
async def stats() -> dict:
    return {"calls": calls}


@app.post("/v1/chat/completions")
async def chat(request: Request) -> JSONResponse:
    rid = request.headers.get("x-request-id") or f"req-{uuid.uuid4().hex}"
    body = await request.json()
    calls.append({"request_id": rid, "t": time.time(), "delay_s": control["delay_s"],
                  "api_key_id": request.state.api_key_id})
    if control["fail_times"] > 0:
        control["fail_times"] -= 1
        headers = {"Retry-After": str(control["retry_after"])} if control["retry_after"] is not None else {}
        status = int(control["fail_status"])
        return JSONResponse({"error": {"message": f"stand-in says {status}", "type": "x", "param": None,
                                       "code": None}}, status_code=status, headers=headers)
    if control.get("unavailable_times", 0) > 0:  # a fail-closed guard: blocked because moderation could not run
        control["unavailable_times"] -= 1
        return JSONResponse({
            "id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(time.time()), "model": "standin-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": TEMPLATE_TEXT},
                         "finish_reason": "content_filter"}],
            "chatgate_moderation": {"stage": "input", "categories": ["moderation_unavailable"], "category_scores": {},
                                    "template": None}})
    try:
        req = ChatCompletionRequest.model_validate(body)
    except Exception as exc:
        raise APIError(400, f"invalid: {exc}") from None
    if control["delay_s"]:
        await asyncio.sleep(float(control["delay_s"]))
    text = " ".join(str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "user")
    model = req.model or "standin-model"
    out: dict[str, Any] = {
        "id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 3, "total_tokens": len(text.split()) + 3},
    }
    if "ABUSIVE" in text:
        scores = {"harassment": 0.97, "violence": 0.12}
        template = {"category": "harassment", "language": req.language or "en", "text": TEMPLATE_TEXT}
        out["choices"] = [{"index": 0, "message": {"role": "assistant", "content": TEMPLATE_TEXT},
                           "finish_reason": "content_filter"}]
        out["chatgate_moderation"] = {"stage": "input", "categories": ["harassment"],
                                      "category_scores": scores, "template": template}
        if publisher.should_record(True):
            await publisher.publish(AuditEvent(
                request_id=rid, stage="input", flagged=True, categories=["harassment"], scores=scores,
                template_category="harassment", template_language=template["language"], model=model, text=text))
    else:
        out["choices"] = [{"index": 0, "message": {"role": "assistant", "content": f"echo: {text[:50]}"},
                           "finish_reason": "stop"}]
        out["chatgate_moderation"] = {"stage": None, "categories": [], "category_scores": {}, "template": None}
    return JSONResponse(out)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning")
