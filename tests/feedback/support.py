"""Shared by tests/feedback and tests/web: a private PostgreSQL schema, and a stand-in for the
Router's side of the recorder seam (records every chat completion the app answers, read off the
HTTP response) so the page and the feedback API can be tested over the fake backend."""
from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pytest

from services.feedback.recorder import CompletionRecorder
from services.feedback.records import ChoiceRecord, CompletionRecord

PG_BASE_DSN = os.environ.get("CHATGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def feedback_pg():
    """A fresh private schema in the `test` database; the DSN sets search_path to it."""
    import psycopg

    schema = f"chatgate_fb_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_BASE_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_BASE_DSN} is required for this test: {exc}")
    yield f"{PG_BASE_DSN}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_BASE_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _outcome(finish: str | None, moderation: dict[str, Any] | None, failed: bool) -> str:
    if failed:
        return "error"
    if finish == "content_filter":
        return f"{(moderation or {}).get('stage', 'output')}_blocked"
    return "answered"


def record_from_http(request: dict[str, Any], chunks: list[dict[str, Any]], api_key_id: str | None) -> CompletionRecord:
    """A CompletionRecord from a chat request and its response (one JSON body or the SSE chunks)."""
    texts: dict[int, str] = {}
    finish: dict[int, tuple[str | None, dict | None]] = {}
    failed = any("error" in c for c in chunks)
    for c in chunks:
        for ch in c.get("choices", []):
            i = ch["index"]
            content = (ch.get("delta") or ch.get("message") or {}).get("content") or ""
            texts[i] = texts.get(i, "") + content
            if ch.get("finish_reason"):
                finish[i] = (ch["finish_reason"], ch.get("chatgate_moderation") or c.get("chatgate_moderation"))
    first = next(c for c in chunks if "id" in c)
    choices = []
    for i in sorted(texts):
        reason, mod = finish.get(i, (None, None))
        choices.append(ChoiceRecord(index=i, outcome=_outcome(reason, mod, failed), text=texts[i],
                                    categories=(mod or {}).get("categories", []),
                                    template_category=((mod or {}).get("template") or {}).get("category")))
    messages = [{"role": m["role"], "content": m["content"]} for m in request["messages"]]
    return CompletionRecord(completion_id=first["id"], api_key_id=api_key_id, model=first.get("model", ""),
                            created=time.time(), messages=messages, choices=choices)


class RecordCompletions:
    """ASGI wrapper: after each 200 from /v1/chat/completions, `await recorder.record(...)`."""

    def __init__(self, app: Any, recorder: CompletionRecorder, keys: set[str] = frozenset()):
        self.app, self.recorder, self.keys = app, recorder, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            return await self.app(scope, receive, send)
        body, out, status = bytearray(), bytearray(), [0]

        async def recv():
            msg = await receive()
            body.extend(msg.get("body", b""))
            return msg

        async def snd(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            elif msg["type"] == "http.response.body":
                out.extend(msg.get("body", b""))
            await send(msg)

        await self.app(scope, recv, snd)
        if status[0] != 200:
            return
        from services.api.app import api_key_id

        token = dict(scope["headers"]).get(b"authorization", b"").decode().partition(" ")[2]
        key = api_key_id(token) if token in self.keys else None  # as the auth middleware: None when keys are off
        text = out.decode()
        if text.lstrip().startswith("{"):
            chunks = [json.loads(text)]
        else:
            chunks = [json.loads(line[5:]) for line in text.replace("\r\n", "\n").split("\n")
                      if line.startswith("data:") and line[5:].strip() != "[DONE]"]
        await self.recorder.record(record_from_http(json.loads(body), chunks, key))
