"""The reconciler (services/jobs/reconcile.py): which jobs it re-publishes, against real Redis and
real Celery messages, and end to end with a real worker after every copy of the message is gone."""
from __future__ import annotations

import asyncio
import json
import signal
import time

import httpx
import pytest

from services.config import QueueSettings
from services.jobs.models import JobRecord
from services.jobs.reconcile import Reconciler, plan
from services.jobs.service import enqueuer
from services.jobs.store import ACTIVE_KEY, AsyncJobStore, JobStore, bodies_key, job_key, lease_key
from services.queue.app import make_celery
from tests.queue.stack import *  # noqa: F401,F403
from tests.queue.stack import calls_for, job, wait_for, wait_job

QUEUE = "chatgate.jobs"
HELLO = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}
FINAL = ("succeeded", "failed", "cancelled")


def test_plan_selects_only_open_unleased_jobs_without_a_message():
    statuses = {"q": "queued", "r": "running", "done": "succeeded", "gone": None, "leased": "running",
                "queued-msg": "queued", "unacked-msg": "running", "c": "cancelled", "f": "failed"}
    p = plan(statuses, statuses, leased={"leased"}, present={"queued-msg", "unacked-msg"})
    assert p.republish == ["q", "r"]
    assert sorted(p.drop) == ["c", "done", "f", "gone"]
    assert sorted(p.later) == ["leased", "queued-msg", "unacked-msg"]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_run_once_against_real_redis_and_celery_messages(broker, jobs_redis):
    r0, r1 = broker
    q = QueueSettings(broker_url=f"{jobs_redis}/0", result_backend=f"{jobs_redis}/1")
    bodies = [HELLO]
    rec = JobRecord(id="job-rec1", status="queued", kind="single", total=1, created_at=time.time())

    async def create() -> None:
        s = AsyncJobStore(f"{jobs_redis}/1", 600)
        await s.create(rec, bodies=bodies)
        await s.close()

    asyncio.run(create())
    enqueuer(make_celery(q), QUEUE)(rec.id, bodies)
    assert r1.ttl(bodies_key(rec.id)) > 0 and r1.zscore(ACTIVE_KEY, rec.id) is not None
    published: list[tuple[str, list]] = []
    rc = Reconciler(JobStore(f"{jobs_redis}/1", 600), r0, lambda j, b: published.append((j, b)),
                    queue=QUEUE, unacked_key="unacked", after_s=5, interval_s=1)
    now = time.time()
    assert rc.run_once(now) == []  # too young
    assert rc.run_once(now + 10) == []  # its message is in the queue
    # The same message held by a worker (kombu's format: [message, exchange, routing_key]).
    raw = r0.rpop(QUEUE)
    r0.hset("unacked", "tag-1", json.dumps([json.loads(raw), QUEUE, QUEUE]))
    assert rc.run_once(now + 20) == []
    r0.delete("unacked")
    r1.set(lease_key(rec.id), "token")  # a delivery is running it
    assert rc.run_once(now + 30) == []
    r1.delete(lease_key(rec.id))
    assert rc.run_once(now + 40) == [rec.id]  # no message anywhere, no lease
    assert published == [(rec.id, bodies)]
    assert float(r1.hget(job_key(rec.id), "requeued_at")) == now + 40
    assert rc.run_once(now + 41) == []  # re-published just now: not again before after_s
    r1.hset(job_key(rec.id), "status", "succeeded")
    assert rc.run_once(now + 100) == [] and r1.zscore(ACTIVE_KEY, rec.id) is None  # terminal: dropped
    assert len(published) == 1


FAST = {"CHATGATE_JOBS__RECONCILE_AFTER_S": "2", "CHATGATE_JOBS__RECONCILE_INTERVAL_S": "1"}


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_queued_job_whose_message_is_gone_completes(broker, reset_standin, start_worker):
    standin = reset_standin
    r0, r1 = broker
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]  # no worker yet: stays queued
    assert r0.llen(QUEUE) == 1
    r0.delete(QUEUE, "unacked", "unacked_index")  # every place the message could be
    w = start_worker(**FAST)
    done = wait_job(standin, job_id, FINAL, 60)
    assert done["status"] == "succeeded", done
    assert done["result"]["response"]["choices"][0]["message"]["content"] == "echo: hello there"
    assert r1.hget(job_key(job_id), "requeued_at")
    text = httpx.get(f"http://127.0.0.1:{w.metrics_port}/metrics", timeout=5).text
    assert "chatgate_jobs_requeued_total 1.0" in text


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_running_job_whose_message_is_gone_completes(broker, reset_standin, start_worker):
    standin = reset_standin
    r0, _ = broker
    standin.post("/_control", json={"delay_s": 120})  # the first call hangs: the worker is mid-job
    first = start_worker(**FAST)
    job_id = standin.post("/v1/jobs", json=HELLO).json()["id"]
    wait_for(lambda: calls_for(standin, job_id), 30, "job to reach the pipeline")
    first.kill(signal.SIGKILL)
    r0.delete(QUEUE, "unacked", "unacked_index")  # the message died with the worker
    assert job(standin, job_id)["status"] == "running"
    standin.post("/_control", json={"delay_s": 0})
    start_worker(**FAST)  # waits for the dead worker's lease to run out (3 s), then re-publishes
    done = wait_job(standin, job_id, FINAL, 60)
    assert done["status"] == "succeeded" and done["attempts"] >= 2, done
