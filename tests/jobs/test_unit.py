"""Jobs domain unit tests: records, moderation outcome, backoff, retry classification, worker key."""
from __future__ import annotations

import json

import httpx
import pytest

from services.config import load_settings
from services.jobs.models import JobRecord, idempotency_digest, moderation_outcome
from services.jobs.pipeline import ItemFailed, RetryableError, call_chat
from services.jobs.tasks import backoff_s, router_api_key


# --- records -----------------------------------------------------------------------------------
def test_record_roundtrip_and_view():
    rec = JobRecord(id="job-1", status="running", kind="list", total=3, created_at=100.5, started_at=101.0,
                    completed=1, succeeded=1, attempts=1)
    item = {"index": 0, "status": "succeeded", "response": {"choices": []}, "moderation": None, "error": None}
    back = JobRecord.from_hash(rec.to_hash(), {"0": json.dumps(item)})
    assert back.created_at == 100.5 and back.started_at == 101.0 and back.finished_at is None
    view = back.view()
    assert view["status"] == "running" and view["batch"] is True and "result" not in view
    assert [r["status"] for r in view["results"]] == ["succeeded", "pending", "pending"]
    assert view["progress"]["total"] == 3 and view["progress"]["completed"] == 1
    cancelled = JobRecord(id="job-2", status="cancelled", kind="single", total=1, created_at=1.0).view()
    assert cancelled["result"]["status"] == "cancelled"


def test_moderation_outcome():
    passed = moderation_outcome({"choices": [{"finish_reason": "stop"}], "chatgate_moderation": {"stage": None}})
    assert passed["outcome"] == "passed"
    assert moderation_outcome({"choices": [{"finish_reason": "stop"}]})["outcome"] == "passed"
    blocked = moderation_outcome({
        "choices": [{"finish_reason": "content_filter"}],
        "chatgate_moderation": {"stage": "output", "categories": ["violence"], "category_scores": {"violence": 0.9},
                                "template": {"category": "violence"}}})
    assert blocked == {"outcome": "blocked", "stage": "output", "categories": ["violence"],
                       "category_scores": {"violence": 0.9}, "template": {"category": "violence"}}


def test_backoff_grows_honours_retry_after_and_caps(monkeypatch):
    monkeypatch.setenv("CHATGATE_JOBS__RETRY_BACKOFF_S", "1")
    monkeypatch.setenv("CHATGATE_JOBS__RETRY_BACKOFF_MAX_S", "10")
    opts = load_settings().jobs
    assert 0.5 <= backoff_s(0, opts, None) <= 1
    assert 4 <= backoff_s(3, opts, None) <= 8
    assert backoff_s(10, opts, None) <= 10
    assert backoff_s(0, opts, 7) == 7
    assert backoff_s(0, opts, 1000) == 10


def test_record_keeps_its_owner():
    rec = JobRecord(id="job-1", status="queued", kind="single", total=1, created_at=1.0, owner="key-abc")
    back = JobRecord.from_hash(rec.to_hash())
    assert back.owner == "key-abc" and back.visible_to("key-abc")
    assert not back.visible_to("key-other") and not back.visible_to(None)
    anon = JobRecord.from_hash(JobRecord(id="j", status="queued", kind="single", total=1, created_at=1.0).to_hash())
    assert anon.owner is None and anon.visible_to(None) and not anon.visible_to("key-abc")


def test_idempotency_digest_is_scoped_by_key():
    assert idempotency_digest("key-a", "k") != idempotency_digest("key-b", "k")
    assert idempotency_digest(None, "k") != idempotency_digest("key-a", "k")
    assert idempotency_digest("key-a", "k") == idempotency_digest("key-a", "k")


def test_every_setting_is_typed_and_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHATGATE_QUEUE__VISIBILITY_TIMEOUT_S", "42")
    monkeypatch.setenv("CHATGATE_JOBS__STORE_URL", "redis://h:1/3")
    monkeypatch.setenv("CHATGATE_AUDIT__PUBLISH_QUEUE_SIZE", "7")
    s = load_settings()
    assert s.queue.visibility_timeout_s == 42 and s.jobs.store_url == "redis://h:1/3"
    assert s.audit.publish_queue_size == 7
    monkeypatch.setenv("CHATGATE_QUEUE__WORKER_POOL", "forks")
    with pytest.raises(ValueError, match="worker_pool"):
        load_settings()


def test_a_stale_setting_name_fails_loudly(monkeypatch):
    # Moved to CHATGATE_QUEUE__BROKER_URL: the old name must not silently fall back to the default broker.
    monkeypatch.setenv("CHATGATE_JOBS__BROKER_URL", "redis://elsewhere:6379/1")
    with pytest.raises(ValueError, match="broker_url"):
        load_settings()


def test_worker_key_defaults_to_the_first_api_key(monkeypatch):
    assert router_api_key(load_settings()) == ""
    monkeypatch.setenv("CHATGATE_API__KEYS", "zeta,alpha")
    assert router_api_key(load_settings()) == "alpha"
    monkeypatch.setenv("CHATGATE_JOBS__ROUTER_API_KEY", "worker-key")
    assert router_api_key(load_settings()) == "worker-key"


def _call(status: int, body: dict, headers: dict | None = None):
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(status, json=body, headers=headers or {})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        try:
            return call_chat(client, "http://r", {"messages": []}, request_id="j-0", timeout_s=5,
                             api_key="sk-1"), seen
        except (RetryableError, ItemFailed) as exc:
            return exc, seen


ANSWER = {"choices": [{"finish_reason": "stop", "message": {"content": "hi"}}]}
UNAVAILABLE = {"choices": [{"finish_reason": "content_filter"}],
               "chatgate_moderation": {"stage": "input", "categories": ["moderation_unavailable"]}}


@pytest.mark.parametrize("status, body, retryable", [
    (200, ANSWER, None),
    (408, {"error": {"code": "timeout"}}, True),
    (429, {"error": {"code": "rate_limited"}}, True),
    (503, {"error": {"code": "overloaded"}}, True),
    (200, UNAVAILABLE, True),  # fail-closed block: an outage, not a verdict
    (503, {"error": {"code": "moderation_unavailable"}}, True),
    (400, {"error": {"code": "invalid_request"}}, False),
    (500, {"error": {"code": "boom"}}, False),
])
def test_transient_failures_are_retried_and_the_worker_authenticates(status, body, retryable):
    out, seen = _call(status, body, {"Retry-After": "3"})
    assert seen["auth"] == "Bearer sk-1"
    if retryable is None:
        assert out == ANSWER
    elif retryable:
        assert isinstance(out, RetryableError) and out.retry_after == 3.0
    else:
        assert isinstance(out, ItemFailed) and out.status == status


def test_failed_retry_publish_requeues_instead_of_deleting(monkeypatch):
    from celery.exceptions import Reject, Retry

    from services.jobs import tasks

    monkeypatch.setattr(tasks.time, "sleep", lambda s: None)

    class Task:
        def __init__(self, publish_ok: bool):
            self.publish_ok = publish_ok

        def retry(self, **kw):
            # What Celery's Task.retry does when S.apply_async() fails: Reject(requeue=False).
            raise Retry() if self.publish_ok else Reject(OSError("broker down"), requeue=False)

    with pytest.raises(Reject) as rej:
        tasks.retry_keeping_message(Task(False), countdown=1.0, exc=RuntimeError("x"), max_retries=3)
    assert rej.value.requeue is True
    with pytest.raises(Retry):
        tasks.retry_keeping_message(Task(True), countdown=1.0, exc=RuntimeError("x"), max_retries=3)
