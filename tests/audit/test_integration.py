"""Audit trail with a real PostgreSQL, a real Redis and a real Celery worker (no model needed)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.queue.stack import *  # noqa: F401,F403
from tests.queue.stack import ROOT, wait_for

from services.audit import AuditEvent, AuditPublisher
from services.audit.events import redacted
from services.audit.store import AuditStore
from services.config import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _event(**kw) -> AuditEvent:
    base = dict(request_id=f"req-{uuid.uuid4().hex[:8]}", stage="output", flagged=True, categories=["violence"],
                scores={"violence": 0.8, "harassment": 0.1}, template_category="violence",
                template_language="de", model="smollm2", text="some text")
    base.update(kw)
    return AuditEvent(**base)


def _row(dsn: str, request_id: str):
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            return conn.execute("SELECT text, text_sha256, flagged, stage FROM chatgate_audit WHERE request_id = %s",
                                (request_id,)).fetchone()
        except psycopg.errors.UndefinedTable:
            return None


def test_store_insert_is_idempotent_and_lists(pg_dsn):
    store = AuditStore(pg_dsn)
    try:
        e = redacted(_event(), store_text=False)
        assert store.insert(e.model_dump()) is True
        assert store.insert(e.model_dump()) is False  # re-delivery: same event_id, no duplicate
        passed = redacted(_event(flagged=False, categories=[], stage="input"), store_text=False)
        store.insert(passed.model_dump())
        rows = store.recent(limit=50, request_id=e.request_id)
        assert len(rows) == 1
        r = rows[0]
        assert (r["stage"], r["flagged"], r["categories"], r["template_language"]) == ("output", True, ["violence"], "de")
        assert r["scores"] == {"violence": 0.8, "harassment": 0.1} and r["text"] is None
        assert [x["request_id"] for x in store.recent(limit=50, flagged=False)] == [passed.request_id]
        assert all(x["stage"] == "input" for x in store.recent(limit=50, stage="input"))
        old = redacted(_event(ts=datetime.now(timezone.utc) - timedelta(days=40)), store_text=False)
        store.insert(old.model_dump())
        assert store.prune(30) == 1
        assert store.recent(request_id=old.request_id) == []
    finally:
        store.close()


def test_cli_lists_recent_decisions(pg_dsn):
    store = AuditStore(pg_dsn)
    e = redacted(_event(request_id="cli-req-1"), store_text=False)
    store.insert(e.model_dump())
    store.close()
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ["PATH"], "CHATGATE_AUDIT__DSN": pg_dsn}
    out = subprocess.run([sys.executable, "-m", "services.audit.cli", "list", "--limit", "5", "--stage", "output",
                          "--blocked"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "cli-req-1" in ln)
    assert "BLOCK" in line and "violence" in line and "violence/de" in line and e.text_sha256[:20] in line
    js = subprocess.run([sys.executable, "-m", "services.audit.cli", "list", "--json", "--request-id", "cli-req-1"],
                        env=env, capture_output=True, text=True, timeout=60)
    assert js.returncode == 0 and '"request_id": "cli-req-1"' in js.stdout


def _publisher(stack_env, monkeypatch, **audit_env) -> AuditPublisher:
    for k, v in stack_env.items():
        if k.startswith("CHATGATE_"):
            monkeypatch.setenv(k, v)
    for k, v in audit_env.items():
        monkeypatch.setenv(f"CHATGATE_AUDIT__{k.upper()}", v)
    return AuditPublisher(load_settings())


def test_published_event_reaches_postgres_through_worker(broker, stack_env, pg_dsn, start_worker, monkeypatch):
    start_worker()
    pub = _publisher(stack_env, monkeypatch)
    e = _event()
    asyncio.run(pub.publish(e))
    assert pub.flush(10)
    row = wait_for(lambda: _row(pg_dsn, e.request_id), 30, "audit row")
    assert row[0] is None and row[1].startswith("sha256:") and row[2] is True and row[3] == "output"
    pub.close()


def test_store_text_on_keeps_text_and_worker_policy_wins(broker, stack_env, pg_dsn, start_worker, monkeypatch):
    # Worker with store_text on + publisher with it on: the text is kept.
    start_worker(CHATGATE_AUDIT__STORE_TEXT="true")
    pub = _publisher(stack_env, monkeypatch, store_text="true")
    kept = _event(text="keep me")
    asyncio.run(pub.publish(kept))
    assert pub.flush(10)
    assert wait_for(lambda: _row(pg_dsn, kept.request_id), 30, "audit row")[0] == "keep me"
    pub.close()


def test_worker_drops_raw_text_when_store_text_off(broker, stack_env, pg_dsn, start_worker, monkeypatch):
    # A publisher configured to keep text, but the worker's policy (store_text off) wins.
    start_worker()
    pub = _publisher(stack_env, monkeypatch, store_text="true")
    e = _event(text="do not keep")
    asyncio.run(pub.publish(e))
    assert pub.flush(10)
    row = wait_for(lambda: _row(pg_dsn, e.request_id), 30, "audit row")
    assert row[0] is None and row[1].startswith("sha256:")
    pub.close()
