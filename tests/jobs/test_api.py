"""The jobs HTTP surface (services/api/jobs.py): validation, idempotency, per-key scoping, error
mapping. No network: an in-memory store and a fake enqueue."""
from __future__ import annotations

import json

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from services.api.errors import APIError, install_error_handlers
from services.api.jobs import create_jobs_routes, parse_job_body
from services.config import load_settings
from services.jobs.models import JobRecord, body_hash

OK = {"messages": [{"role": "user", "content": "hi"}]}


class MemoryStore:
    """Same interface as AsyncJobStore, in memory."""

    def __init__(self):
        self.jobs: dict[str, JobRecord] = {}
        self.idem: dict[str, str] = {}

    async def create(self, rec, *, bodies=None, idem_digest=None, body_hash=""):
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


def _app(store, enqueue) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.middleware("http")
    async def tenant(request: Request, call_next):  # what services/api/app.py's auth middleware sets
        request.state.api_key_id = request.headers.get("x-test-tenant")
        return await call_next(request)

    app.include_router(create_jobs_routes(load_settings(), store=store, enqueue=enqueue))
    return app


@pytest.fixture
def api():
    store, sent = MemoryStore(), []
    with TestClient(_app(store, lambda job_id, bodies: sent.append((job_id, bodies)))) as client:
        yield client, store, sent


# --- body validation ---------------------------------------------------------------------------
def test_single_and_list_bodies():
    kind, bodies = parse_job_body(json.dumps(OK), max_batch=4)
    assert kind == "single" and bodies == [OK]
    lkind, lbodies = parse_job_body(json.dumps([OK, OK]), max_batch=4)
    assert lkind == "list" and len(lbodies) == 2
    assert body_hash(bodies, kind) != body_hash(lbodies, lkind)


def test_body_hash_ignores_key_order_and_stream_false():
    a = parse_job_body(b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}', max_batch=4)
    b = parse_job_body(b'{"max_tokens": 5, "stream": false, "messages": [{"content": "hi", "role": "user"}]}',
                       max_batch=4)
    assert body_hash(a[1], a[0]) == body_hash(b[1], b[0])
    assert "stream" not in b[1][0]


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

    with TestClient(_app(store, broken)) as client:
        r = client.post("/v1/jobs", json=OK, headers={"Idempotency-Key": "k"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "jobs_unavailable"
    assert store.jobs == {} and store.idem == {}


# --- tenants -----------------------------------------------------------------------------------
def test_jobs_are_invisible_to_other_keys(api):
    client, store, sent = api
    a = {"x-test-tenant": "key-a"}
    b = {"x-test-tenant": "key-b"}
    job_id = client.post("/v1/jobs", json=OK, headers=a).json()["id"]
    assert store.jobs[job_id].owner == "key-a"
    assert client.get(f"/v1/jobs/{job_id}", headers=a).status_code == 200
    for headers in (b, {}):  # another key, or no key at all
        r = client.get(f"/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
        assert client.delete(f"/v1/jobs/{job_id}", headers=headers).status_code == 404
    assert store.jobs[job_id].status == "queued"  # b's cancel did not touch it
    assert client.delete(f"/v1/jobs/{job_id}", headers=a).status_code == 200


def test_idempotency_keys_are_per_api_key(api):
    client, store, sent = api
    a = client.post("/v1/jobs", json=OK, headers={"x-test-tenant": "key-a", "Idempotency-Key": "same"})
    other = {"messages": [{"role": "user", "content": "b's own request"}]}
    b = client.post("/v1/jobs", json=other, headers={"x-test-tenant": "key-b", "Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 202  # not a 409: b never saw a's key
    assert a.json()["id"] != b.json()["id"] and len(sent) == 2
    again = client.post("/v1/jobs", json=OK, headers={"x-test-tenant": "key-a", "Idempotency-Key": "same"})
    assert again.json()["id"] == a.json()["id"] and again.headers["idempotent-replayed"] == "true"
