"""Queue mechanics with a real Redis, real Celery worker processes and a real PostgreSQL, against
the stand-in Router (tests/queue/standin.py). The same checks against the real app are in
test_jobs_live.py (slow)."""
from __future__ import annotations

import hashlib
import signal

import psycopg
import pytest

from tests.queue.stack import *  # noqa: F401,F403
from tests.queue.stack import Standin, calls_for, free_port, job, wait_for, wait_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

HELLO = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}
ABUSIVE_TEXT = "you are ABUSIVE garbage"
ABUSIVE = {"messages": [{"role": "user", "content": ABUSIVE_TEXT}], "max_tokens": 16}


def _lpush_calls(r) -> int:
    return int(r.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0))


def _job_keys(r) -> list[str]:
    return list(r.scan_iter(match="chatgate:jobs:*", count=1000))


def test_job_completes_with_answer(broker, reset_standin, start_worker):
    standin = reset_standin
    start_worker()
    r = standin.post("/v1/jobs", json=HELLO)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["id"].startswith("job-")
    assert r.headers["location"] == f"/v1/jobs/{body['id']}"
    done = wait_job(standin, body["id"], ("succeeded", "failed", "cancelled"), 60)
    assert done["status"] == "succeeded", done
    item = done["result"]
    assert item["status"] == "succeeded"
    assert item["response"]["object"] == "chat.completion"
    assert item["response"]["choices"][0]["message"]["content"] == "echo: hello there"
    assert item["moderation"]["outcome"] == "passed"
    assert done["progress"] == {"total": 1, "completed": 1, "succeeded": 1, "failed": 0, "cancelled": 0,
                                "blocked": 0}
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]


def test_list_job_progress_and_order(broker, reset_standin, start_worker):
    standin = reset_standin
    start_worker()
    bodies = [{"messages": [{"role": "user", "content": f"item {i}"}]} for i in range(3)] + [ABUSIVE]
    r = standin.post("/v1/jobs", json=bodies)
    assert r.status_code == 202, r.text
    assert r.json()["progress"]["total"] == 4 and r.json()["batch"] is True
    done = wait_job(standin, r.json()["id"], ("succeeded", "failed", "cancelled"), 60)
    assert done["status"] == "succeeded", done
    assert [it["index"] for it in done["results"]] == [0, 1, 2, 3]
    assert [it["response"]["choices"][0]["message"]["content"] for it in done["results"][:3]] == [
        "echo: item 0", "echo: item 1", "echo: item 2"]
    assert done["results"][3]["moderation"]["outcome"] == "blocked"
    assert done["progress"]["completed"] == 4 and done["progress"]["blocked"] == 1
    assert "result" not in done


def test_abusive_job_gets_template_and_audit_row(broker, reset_standin, start_worker, pg_dsn):
    standin = reset_standin
    start_worker()
    r = standin.post("/v1/jobs", json=ABUSIVE)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    done = wait_job(standin, job_id, ("succeeded", "failed", "cancelled"), 60)
    assert done["status"] == "succeeded", done
    item = done["result"]
    assert item["response"]["choices"][0]["finish_reason"] == "content_filter"
    assert item["response"]["choices"][0]["message"]["content"] == "I can't help with that request."
    assert item["moderation"]["outcome"] == "blocked"
    assert item["moderation"]["stage"] == "input"
    assert item["moderation"]["categories"] == ["harassment"]
    assert item["moderation"]["template"]["category"] == "harassment"
    assert done["progress"]["blocked"] == 1

    def audit_row():
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            try:
                return conn.execute(
                    "SELECT request_id, stage, flagged, categories, scores, template_category, template_language,"
                    " model, text, text_sha256, text_chars FROM chatgate_audit WHERE request_id = %s",
                    (f"{job_id}-0",)).fetchone()
            except psycopg.errors.UndefinedTable:
                return None

    row = wait_for(audit_row, 30, "audit row for the blocked job item")
    request_id, stage, flagged, categories, scores, tcat, tlang, model, text, digest, chars = row
    assert (stage, flagged, categories, tcat, tlang, model) == ("input", True, ["harassment"], "harassment", "en",
                                                                "standin-model")
    assert scores["harassment"] == pytest.approx(0.97)
    assert text is None  # store_text is off: only the digest
    assert digest == "sha256:" + hashlib.sha256(ABUSIVE_TEXT.encode()).hexdigest()
    assert chars == len(ABUSIVE_TEXT)


def test_cancel_queued_job(broker, reset_standin, start_worker):
    standin = reset_standin
    r0, _ = broker
    # No worker yet: the job stays queued.
    r = standin.post("/v1/jobs", json=HELLO)
    assert r.status_code == 202
    job_id = r.json()["id"]
    assert job(standin, job_id)["status"] == "queued"
    assert r0.llen("chatgate.jobs") == 1
    c = standin.delete(f"/v1/jobs/{job_id}")
    assert c.status_code == 200, c.text
    assert c.json()["status"] == "cancelled"
    assert c.json()["result"]["status"] == "cancelled"
    # A second cancel is a conflict; an unknown id is 404.
    assert standin.delete(f"/v1/jobs/{job_id}").status_code == 409
    assert standin.delete("/v1/jobs/job-doesnotexist").status_code == 404
    # A worker now consumes the message and must drop it without calling the pipeline.
    start_worker()
    wait_for(lambda: r0.llen("chatgate.jobs") == 0 and r0.hlen("unacked") == 0, 30,
             "worker to consume and ack the cancelled job's message")
    final = job(standin, job_id)
    assert final["status"] == "cancelled" and final["attempts"] == 0
    assert calls_for(standin, job_id) == []


def test_cancel_running_list_cancels_what_has_not_run(broker, reset_standin, start_worker):
    standin = reset_standin
    standin.post("/_control", json={"delay_s": 3})
    start_worker()
    bodies = [{"messages": [{"role": "user", "content": f"slow {i}"}]} for i in range(3)]
    job_id = standin.post("/v1/jobs", json=bodies).json()["id"]
    wait_for(lambda: calls_for(standin, job_id), 30, "first item to reach the pipeline")
    c = standin.delete(f"/v1/jobs/{job_id}")
    assert c.status_code == 202 and c.json()["cancel_requested"] is True
    done = wait_job(standin, job_id, ("succeeded", "failed", "cancelled"), 60)
    assert done["status"] == "cancelled"
    assert done["results"][0]["status"] == "succeeded"
    assert [it["status"] for it in done["results"][1:]] == ["cancelled", "cancelled"]
    assert len(calls_for(standin, job_id)) == 1


def test_sigkill_mid_job_is_redelivered(broker, reset_standin, start_worker):
    standin = reset_standin
    r0, _ = broker
    standin.post("/_control", json={"delay_s": 120})  # the first call hangs: the worker is mid-job
    first = start_worker()
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]
    wait_for(lambda: calls_for(standin, job_id), 30, "job to reach the pipeline")
    assert job(standin, job_id)["status"] == "running"
    first.kill(signal.SIGKILL)
    assert first.proc.returncode == -signal.SIGKILL
    assert r0.hlen("unacked") >= 1  # the broker still holds the unacknowledged message
    standin.post("/_control", json={"delay_s": 0})
    start_worker()
    done = wait_job(standin, job_id, ("succeeded", "failed", "cancelled"), 90)
    assert done["status"] == "succeeded", done
    assert done["result"]["response"]["choices"][0]["message"]["content"] == "echo: hello there"
    assert done["attempts"] >= 2
    assert len(calls_for(standin, job_id)) >= 2


def test_retries_on_503_then_succeeds(broker, reset_standin, start_worker):
    standin = reset_standin
    standin.post("/_control", json={"fail_status": 503, "fail_times": 2, "retry_after": 0})
    start_worker()
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]
    done = wait_job(standin, job_id, ("succeeded", "failed", "cancelled"), 60)
    assert done["status"] == "succeeded", done
    assert done["retries"] == 2
    assert len(calls_for(standin, job_id)) == 3


def test_408_and_moderation_unavailable_are_retried(broker, reset_standin, start_worker):
    standin = reset_standin
    standin.post("/_control", json={"fail_status": 408, "fail_times": 1, "retry_after": 0, "unavailable_times": 1})
    start_worker()
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]
    done = wait_job(standin, job_id, ("succeeded", "failed", "cancelled"), 60)
    # 408, then a fail-closed block (moderation could not run): both transient, the third call answers
    assert done["status"] == "succeeded" and done["retries"] == 2, done
    assert done["result"]["moderation"]["outcome"] == "passed"
    assert len(calls_for(standin, job_id)) == 3


def test_worker_authenticates_and_tenants_see_only_their_jobs(broker, stack_env, start_worker, tmp_path):
    from services.api.app import api_key_id

    port = free_port()
    env = {**stack_env, "CHATGATE_API__KEYS": "sk-worker,sk-tenant-a,sk-tenant-b",
           "CHATGATE_JOBS__ROUTER_URL": f"http://127.0.0.1:{port}", "CHATGATE_JOBS__ROUTER_API_KEY": "sk-worker"}
    router = Standin(env, port, tmp_path)
    try:
        c, a, b = router.client, {"Authorization": "Bearer sk-tenant-a"}, {"Authorization": "Bearer sk-tenant-b"}
        assert c.post("/v1/jobs", json=HELLO).status_code == 401  # keys are on
        start_worker(**{k: v for k, v in env.items() if k.startswith("CHATGATE_")})
        job_id = c.post("/v1/jobs", json=HELLO, headers={**a, "Idempotency-Key": "k"}).json()["id"]
        done = wait_for(lambda: (lambda j: j if j["status"] != "queued" and j["status"] != "running" else None)(
            c.get(f"/v1/jobs/{job_id}", headers=a).json()), 60, "job")
        assert done["status"] == "succeeded", done  # before: 401 from the Router, the worker had no key
        call = next(x for x in c.get("/_stats").json()["calls"] if x["request_id"].startswith(job_id))
        assert call["api_key_id"] == api_key_id("sk-worker")
        for verb in (c.get, c.delete):  # tenant b: as if the job did not exist
            r = verb(f"/v1/jobs/{job_id}", headers=b)
            assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
        other = c.post("/v1/jobs", json={**HELLO, "max_tokens": 3}, headers={**b, "Idempotency-Key": "k"})
        assert other.status_code == 202 and other.json()["id"] != job_id  # keys are per tenant: no 409
        assert c.get(f"/v1/jobs/{job_id}", headers=a).json()["status"] == "succeeded"
    finally:
        router.stop()


def test_429_retries_exhausted_fails_job(broker, reset_standin, start_worker):
    standin = reset_standin
    standin.post("/_control", json={"fail_status": 429, "fail_times": 100})
    start_worker()
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]
    done = wait_job(standin, job_id, ("succeeded", "failed", "cancelled"), 60)
    assert done["status"] == "failed"
    assert done["result"]["error"]["code"] == "upstream_unavailable"
    assert len(calls_for(standin, job_id)) == 4  # 1 try + max_retries (3)


def test_4xx_from_pipeline_fails_item_without_retry(broker, reset_standin, start_worker):
    standin = reset_standin
    standin.post("/_control", json={"fail_status": 400, "fail_times": 1})
    start_worker()
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]
    done = wait_job(standin, job_id, ("succeeded", "failed", "cancelled"), 60)
    assert done["status"] == "failed"
    assert done["result"]["error"]["code"] == "pipeline_rejected"
    assert done["result"]["error"]["status"] == 400
    assert done["error"].startswith("pipeline_rejected")
    assert len(calls_for(standin, job_id)) == 1


@pytest.mark.parametrize("payload", [
    b"{not json",
    b"[]",
    b'"a string"',
    b'{"messages": []}',
    b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}',
    b'[{"messages": [{"role": "user", "content": "ok"}]}, {"messages": "nope"}]',
    b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 9}',
])
def test_malformed_body_is_400_and_nothing_enqueued(broker, reset_standin, payload):
    standin = reset_standin
    r0, r1 = broker
    before = _lpush_calls(r0)
    r = standin.post("/v1/jobs", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert _lpush_calls(r0) == before
    assert r0.llen("chatgate.jobs") == 0
    assert _job_keys(r1) == []
    # Control: a valid body does enqueue (so the checks above can detect an enqueue).
    assert standin.post("/v1/jobs", json=HELLO).status_code == 202
    assert _lpush_calls(r0) > before and r0.llen("chatgate.jobs") == 1


def test_idempotency_key(broker, reset_standin):
    standin = reset_standin
    r0, _ = broker
    h = {"Idempotency-Key": "order-42"}
    a = standin.post("/v1/jobs", json=HELLO, headers=h)
    b = standin.post("/v1/jobs", json=HELLO, headers=h)
    assert a.status_code == 202 and b.status_code == 202
    assert a.json()["id"] == b.json()["id"]
    assert b.headers.get("idempotent-replayed") == "true"
    assert r0.llen("chatgate.jobs") == 1
    c = standin.post("/v1/jobs", json=ABUSIVE, headers=h)
    assert c.status_code == 409 and c.json()["error"]["code"] == "idempotency_key_reused"
    d = standin.post("/v1/jobs", json=HELLO, headers={"Idempotency-Key": "order-43"})
    assert d.status_code == 202 and d.json()["id"] != a.json()["id"]
    assert r0.llen("chatgate.jobs") == 2


def test_unknown_job_is_404(broker, reset_standin):
    r = reset_standin.get("/v1/jobs/job-nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"


def test_worker_metrics(broker, reset_standin, start_worker):
    import httpx

    standin = reset_standin
    w = start_worker()
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]
    wait_job(standin, job_id, ("succeeded",), 60)
    text = httpx.get(f"http://127.0.0.1:{w.metrics_port}/metrics", timeout=5).text
    assert 'chatgate_worker_queue_depth{queue="chatgate.jobs"} 0.0' in text
    assert 'chatgate_worker_task_duration_seconds_count{state="SUCCESS",task="chatgate.jobs.run_job"} 1.0' in text
    assert 'chatgate_jobs_items_total{outcome="succeeded"} 1.0' in text
    assert "chatgate_worker_task_failures_total" in text
