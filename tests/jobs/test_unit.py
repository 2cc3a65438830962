"""Job API unit tests: validation, records, idempotency — no network (in-memory store, fake enqueue)."""
from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.errors import APIError, install_error_handlers
from services.config import load_settings
from services.jobs.api import create_jobs_router
from services.jobs.models import JobRecord, moderation_outcome, parse_job_body
from services.jobs.options import JobOptions
from services.jobs.tasks import backoff_s

OK = {"messages": [{"role": "user", "content": "hi"}]}


class MemoryStore:
    """Same interface as AsyncJobStore, in memory."""

    def __init__(self):
        self.jobs: dict[str, JobRecord] = {}
        self.idem: dict[str, str] = {}

    async def create(self, rec, *, idem_digest=None, body_hash=""):
        if idem_digest:
            if idem_digest in self.idem:
                return False, self.idem[idem_digest]
            self.idem[idem_digest] = json.dumps({"job_id": rec.id, "body_hash": body_hash})
        self.jobs[rec.id] = rec
        return True, rec.id

    async def forget(self, job_id, idem_digest):
        self.jobs.pop(job_id, None)
        self.idem.pop(idem_digest, None)

    async def get(self, job_id):
        return self.jobs.get(job_id)

    async def cas(self, job_id, allowed, new, **fields):
        rec = self.jobs.get(job_id)
        if rec is None:
            return False, None
        if rec.status not in allowed.split(","):
            return False, rec.status
        old, rec.status = rec.status, new
        if fields.get("cancel_requested") == "1":
            rec.cancel_requested = True
        return True, old

    async def request_cancel(self, job_id):
        self.jobs[job_id].cancel_requested = True


@pytest.fixture
def api():
    store, sent = MemoryStore(), []
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(create_jobs_router(load_settings(), store=store,
                                          enqueue=lambda job_id, bodies: sent.append((job_id, bodies))))
    with TestClient(app) as client:
        yield client, store, sent


# --- body validation ---------------------------------------------------------------------------
def test_single_and_list_bodies():
    single = parse_job_body(json.dumps(OK), max_batch=4)
    assert single.kind == "single" and single.bodies == [OK]
    lst = parse_job_body(json.dumps([OK, OK]), max_batch=4)
    assert lst.kind == "list" and len(lst.bodies) == 2
    assert single.body_hash != lst.body_hash


def test_body_hash_ignores_key_order_and_stream_false():
    a = parse_job_body(b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}', max_batch=4)
    b = parse_job_body(b'{"max_tokens": 5, "stream": false, "messages": [{"content": "hi", "role": "user"}]}',
                       max_batch=4)
    assert a.body_hash == b.body_hash
    assert "stream" not in b.bodies[0]


@pytest.mark.parametrize("raw, code, param", [
    (b"{oops", "invalid_json", None),
    (b"[]", "invalid_request", None),
    (b"42", "invalid_request", None),
    (b'{"messages": []}', "invalid_request", "messages"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}', "stream_not_supported", "stream"),
    (b'[{"messages": [{"role": "user", "content": "hi"}]}, {"messages": [{"role": "robot", "content": "x"}]}]',
     "invalid_request", "[1].messages.0.role"),
    (b'[{"messages": [{"role": "user", "content": "a"}], "stream": true}]', "stream_not_supported", "[0].stream"),
    (b'[1]', "invalid_request", "[0]"),
])
def test_malformed_bodies(raw, code, param):
    with pytest.raises(APIError) as e:
        parse_job_body(raw, max_batch=4)
    assert e.value.status == 400 and e.value.code == code and e.value.param == param


def test_batch_limit():
    with pytest.raises(APIError) as e:
        parse_job_body(json.dumps([OK] * 5), max_batch=4)
    assert e.value.code == "batch_too_large"


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
    opts = JobOptions.from_settings(load_settings())
    assert 0.5 <= backoff_s(0, opts, None) <= 1
    assert 4 <= backoff_s(3, opts, None) <= 8
    assert backoff_s(10, opts, None) <= 10
    assert backoff_s(0, opts, 7) == 7
    assert backoff_s(0, opts, 1000) == 10


def test_options_env_fallback(monkeypatch):
    monkeypatch.setenv("CHATGATE_JOBS__VISIBILITY_TIMEOUT_S", "42")
    monkeypatch.setenv("CHATGATE_JOBS__RESULT_BACKEND", "redis://h:1/3")
    opts = JobOptions.from_settings(load_settings())
    assert opts.visibility_timeout_s == 42 and opts.store_url == "redis://h:1/3"


# --- API ---------------------------------------------------------------------------------------
def test_submit_get_cancel(api):
    client, store, sent = api
    r = client.post("/v1/jobs", json=[OK, OK])
    assert r.status_code == 202
    job_id = r.json()["id"]
    assert sent == [(job_id, [OK, OK])]
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    c = client.delete(f"/v1/jobs/{job_id}")
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 409
    store.jobs[job_id].status = "running"
    store.jobs[job_id].cancel_requested = False
    r2 = client.delete(f"/v1/jobs/{job_id}")
    assert r2.status_code == 202 and r2.json()["cancel_requested"] is True
    assert client.get("/v1/jobs/job-x").status_code == 404


def test_malformed_body_enqueues_nothing(api):
    client, store, sent = api
    r = client.post("/v1/jobs", content=b'{"messages": "x"}', headers={"content-type": "application/json"})
    assert r.status_code == 400
    body = r.json()["error"]
    assert body["type"] == "invalid_request_error" and body["param"] == "messages"
    assert sent == [] and store.jobs == {}


def test_idempotency(api):
    client, store, sent = api
    a = client.post("/v1/jobs", json=OK, headers={"Idempotency-Key": "k1"})
    b = client.post("/v1/jobs", json=OK, headers={"Idempotency-Key": "k1"})
    assert a.json()["id"] == b.json()["id"] and len(sent) == 1 and len(store.jobs) == 1
    assert b.headers["idempotent-replayed"] == "true"
    other = {"messages": [{"role": "user", "content": "different"}]}
    c = client.post("/v1/jobs", json=other, headers={"Idempotency-Key": "k1"})
    assert c.status_code == 409 and len(sent) == 1
    assert client.post("/v1/jobs", json=OK, headers={"Idempotency-Key": ""}).status_code == 400
    store.jobs[a.json()["id"]].status = "succeeded"
    assert client.post("/v1/jobs", json=OK, headers={"Idempotency-Key": "k1"}).status_code == 200


def test_enqueue_failure_is_503_and_leaves_nothing():
    store = MemoryStore()

    def broken(job_id, bodies):
        raise ConnectionError("broker down")

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(create_jobs_router(load_settings(), store=store, enqueue=broken))
    with TestClient(app) as client:
        r = client.post("/v1/jobs", json=OK, headers={"Idempotency-Key": "k"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "jobs_unavailable"
    assert store.jobs == {} and store.idem == {}
