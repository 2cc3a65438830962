"""Audit events are never dropped silently, against the real components: a real broker Redis, a
real PostgreSQL, real Celery worker processes, and real outages (a port nothing listens on)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import psycopg
import pytest

from tests.queue.stack import *  # noqa: F401,F403
from tests.queue.stack import ROOT, free_port, wait_for

from services.audit import AuditEvent, AuditPublisher
from services.config import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DEAD_PG = "postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=1"


def _event(rid: str) -> AuditEvent:
    return AuditEvent(request_id=rid, stage="input", flagged=True, categories=["harassment"], text="t")


def _rows(dsn: str, *rids: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            got = conn.execute("SELECT request_id FROM chatgate_audit WHERE request_id = ANY(%s)", (list(rids),))
            return {r[0] for r in got.fetchall()}
        except psycopg.errors.UndefinedTable:
            return set()


def _env(monkeypatch, stack_env, **extra: str):
    for k, v in {**stack_env, **extra}.items():
        if k.startswith("CHATGATE_"):
            monkeypatch.setenv(k, v)
    return load_settings()


def test_worker_parks_events_postgres_refused_and_writes_them_once_it_is_back(broker, stack_env, pg_dsn,
                                                                            start_worker, monkeypatch):
    r0, _ = broker
    dead = DEAD_PG.format(port=free_port())
    start_worker(CHATGATE_AUDIT__DSN=dead, CHATGATE_AUDIT__MAX_RETRIES="1")
    pub = AuditPublisher(_env(monkeypatch, stack_env))
    asyncio.run(pub.publish(_event("parked-1")))
    assert pub.flush(10)
    parked = wait_for(lambda: r0.lrange("chatgate:audit:deadletter", 0, -1), 60, "the event in the dead-letter list")
    assert [json.loads(p)["request_id"] for p in parked] == ["parked-1"]
    assert _rows(pg_dsn, "parked-1") == set()
    # PostgreSQL "comes back" (a worker that reaches it): the next write drains the parked event.
    start_worker()
    asyncio.run(pub.publish(_event("after-1")))
    assert pub.flush(10)
    wait_for(lambda: _rows(pg_dsn, "parked-1", "after-1") == {"parked-1", "after-1"}, 60, "both rows")
    assert r0.llen("chatgate:audit:deadletter") == 0
    pub.close()


async def test_broker_down_goes_straight_to_postgres(stack_env, pg_dsn, monkeypatch, tmp_path):
    settings = _env(monkeypatch, stack_env, CHATGATE_QUEUE__BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
                    CHATGATE_QUEUE__PUBLISH_TIMEOUT_S="1", CHATGATE_AUDIT__SPOOL_DIR=str(tmp_path))
    pub = AuditPublisher(settings)
    await pub.publish(_event("direct-1"))
    assert await asyncio.to_thread(pub.flush, 30)
    assert _rows(pg_dsn, "direct-1") == {"direct-1"} and len(pub.spool) == 0
    pub.close()


def test_broker_and_postgres_down_spool_then_replay_through_the_worker(broker, stack_env, pg_dsn, start_worker,
                                                                      monkeypatch, tmp_path):
    down = _env(monkeypatch, stack_env, CHATGATE_QUEUE__BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
                CHATGATE_QUEUE__PUBLISH_TIMEOUT_S="1", CHATGATE_AUDIT__DSN=DEAD_PG.format(port=free_port()),
                CHATGATE_AUDIT__SPOOL_DIR=str(tmp_path))
    pub = AuditPublisher(down)
    asyncio.run(pub.publish(_event("spooled-1")))
    assert pub.flush(30)
    assert [p.name for p in pub.spool.paths()] and _rows(pg_dsn, "spooled-1") == set()
    pub.close()
    # A restarted Router (new publisher, everything up again) replays the spool after its first send.
    start_worker()
    up = AuditPublisher(_env(monkeypatch, stack_env, CHATGATE_AUDIT__SPOOL_DIR=str(tmp_path)))
    asyncio.run(up.publish(_event("fresh-1")))
    assert up.flush(10)
    wait_for(lambda: _rows(pg_dsn, "spooled-1", "fresh-1") == {"spooled-1", "fresh-1"}, 60, "both rows")
    assert len(up.spool) == 0
    up.close()


EXITS_AT_ONCE = """
import asyncio, sys
from services.audit import AuditEvent, AuditPublisher
from services.config import load_settings
pub = AuditPublisher(load_settings())
async def main():
    for i in range(int(sys.argv[1])):
        await pub.publish(AuditEvent(request_id=f"exit-{i}", stage="output", flagged=True))
asyncio.run(main())
# no flush, no close: the interpreter exits with events still queued
"""


def test_events_queued_at_exit_are_flushed(broker, stack_env):
    r0, _ = broker
    proc = subprocess.run([sys.executable, "-c", EXITS_AT_ONCE, "200"], env=stack_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # No worker runs: every event must be sitting in the broker's audit queue.
    assert r0.llen("chatgate.audit") == 200
