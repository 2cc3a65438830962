"""The fault suite's audit check counts an event the broker still holds (queued, or unacked by a
killed worker) as delayed, not lost, and does not lose one that moves while it looks: REAL Redis,
REAL PostgreSQL, messages published by REAL Celery."""
from __future__ import annotations

import json
import uuid

import pytest
import redis

from services.audit.store import AuditStore
from services.audit.tasks import AUDIT_TASK
from services.config import QueueSettings
from services.queue.app import make_celery
from tests.queue.stack import pg_dsn  # noqa: F401 - fixture
from tools.faults import probes
from tools.faults.probes import _broker_request_ids

pytestmark = pytest.mark.integration
URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def client():
    c = redis.Redis.from_url(URL)
    try:
        c.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {URL}: {exc}")
    yield c


def test_queued_and_unacked_audit_messages_are_found_by_request_id(client):
    queue, unacked = f"test.audit.{uuid.uuid4().hex}", f"test.unacked.{uuid.uuid4().hex}"
    app = make_celery(QueueSettings(broker_url=URL, result_backend=URL))
    try:
        for rid in ("req-queued", "req-unacked"):
            app.send_task(AUDIT_TASK, args=[{"request_id": rid, "event_id": rid}], queue=queue)
        raw = client.rpop(queue)  # what a worker's BRPOP takes; kombu then records it in `unacked`
        client.hset(unacked, "tag-1", json.dumps([json.loads(raw), "", queue]))
        wanted = {"req-queued", "req-unacked", "req-never-sent"}
        assert _broker_request_ids(client, queue, unacked, wanted) == {"req-queued", "req-unacked"}
    finally:
        client.delete(queue, unacked)
        app.close()


def test_event_written_by_the_worker_while_the_check_looks_is_found(client, pg_dsn, tmp_path, monkeypatch):
    """The worker takes the message off the broker and writes the row between two of the check's
    reads: the check reads the broker before the table, so it sees the row."""
    queue, unacked = f"test.audit.{uuid.uuid4().hex}", f"test.unacked.{uuid.uuid4().hex}"
    rid = f"req-{uuid.uuid4().hex[:8]}"
    store = AuditStore(pg_dsn)
    real = probes._broker_request_ids

    def broker_then_worker_moves(*args):
        found = real(*args)
        client.delete(queue)  # the worker took it...
        store.insert({"event_id": rid, "ts": "2026-12-04T00:00:00Z", "request_id": rid, "stage": "input",
                      "flagged": True})  # ...and wrote the row
        return found

    monkeypatch.setattr(probes, "_broker_request_ids", broker_then_worker_moves)
    try:
        client.delete(queue)
        assert probes.audited_ids(pg_dsn, [rid], tmp_path, URL, "test.dl", audit_queue=queue,
                                  unacked_key=unacked, passes=1) == {rid}
        assert probes.audited_ids(pg_dsn, ["req-never-sent"], tmp_path, URL, "test.dl", audit_queue=queue,
                                  unacked_key=unacked, passes=2, pause_s=0) == set()
    finally:
        client.delete(queue, unacked)
        store.close()
