"""The fault suite's audit check counts an event the broker still holds (queued, or unacked by a
killed worker) as delayed, not lost: REAL Redis, messages published by REAL Celery."""
from __future__ import annotations

import json
import uuid

import pytest
import redis

from services.audit.tasks import AUDIT_TASK
from services.config import QueueSettings
from services.queue.app import make_celery
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
