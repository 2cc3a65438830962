"""Jobs and the audit trail against the real app (Ray Serve + vLLM + ONNX classifier), with a real
Celery worker process started here (tests/live.py runs the app with CHATGATE_WORKERS=0)."""
from __future__ import annotations

import signal

import httpx
import psycopg
import pytest

from services.config import load_settings
from tests.queue.stack import Worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODEL = "smollm2-135m-instruct"
BENIGN = "Explain how a classification algorithm works"
ABUSIVE = "I want to cut myself tonight"


def _body(content: str) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 32,
            "temperature": 0, "seed": 7}


@pytest.fixture(scope="module")
def live_worker(live_app, tmp_path_factory):
    w = Worker(dict(live_app.env), tmp_path_factory.mktemp("live-worker"), "live-w0")
    w.wait_ready()
    yield w
    w.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def audit_dsn(live_app) -> str:
    return live_app.env.get("CHATGATE_AUDIT__DSN") or load_settings().audit.dsn


def _run_job(live_app, body, timeout_s: float = 300) -> dict:
    with httpx.Client(base_url=live_app.base_url, timeout=30) as c:
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]

        def finished():
            j = c.get(f"/v1/jobs/{job_id}").json()
            return j if j["status"] in ("succeeded", "failed", "cancelled") else None

        return wait_for(finished, timeout_s, f"job {job_id}", interval_s=1)


def test_job_gets_a_model_answer(live_app, live_worker):
    done = _run_job(live_app, _body(BENIGN))
    assert done["status"] == "succeeded", done
    resp = done["result"]["response"]
    assert resp["object"] == "chat.completion" and resp["model"] == MODEL
    assert resp["choices"][0]["finish_reason"] in ("stop", "length")
    assert len(resp["choices"][0]["message"]["content"].split()) >= 3
    assert done["result"]["moderation"]["outcome"] == "passed"


def test_abusive_job_gets_template_and_audit_record(live_app, live_worker, audit_dsn):
    done = _run_job(live_app, _body(ABUSIVE))
    assert done["status"] == "succeeded", done
    resp = done["result"]["response"]
    assert resp["choices"][0]["finish_reason"] == "content_filter"
    mod = done["result"]["moderation"]
    assert mod["outcome"] == "blocked" and mod["stage"] == "input" and mod["categories"]
    assert mod["template"] and resp["choices"][0]["message"]["content"]
    assert done["progress"]["blocked"] == 1

    def row():
        with psycopg.connect(audit_dsn, autocommit=True, connect_timeout=5) as conn:
            try:
                return conn.execute(
                    "SELECT stage, flagged, categories, text, text_sha256 FROM chatgate_audit WHERE request_id = %s",
                    (resp["id"],)).fetchone()
            except psycopg.errors.UndefinedTable:
                return None

    stage, flagged, categories, text, digest = wait_for(row, 60, "audit record of the blocked request")
    assert stage == "input" and flagged is True
    assert set(mod["categories"]) <= set(categories) or set(categories) <= set(mod["categories"])
    assert text is None and digest.startswith("sha256:")

    # The Router's publisher counters reach Prometheus through Ray's metrics (ray_ prefix), not a
    # prometheus_client registry inside the replica that nobody scrapes.
    def published() -> float:
        text = httpx.get(live_app.metrics_url, timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("ray_chatgate_audit_events_published_total"))

    assert wait_for(published, 90, "ray_chatgate_audit_events_published_total", interval_s=3) >= 1
