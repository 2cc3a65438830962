"""What the fault suite sends beside the locust load, to count what load figures cannot:

* an abusive chat every few seconds: a model answer to it is unchecked text delivered; each
  block must leave an audit event (request_id = the completion id) in PostgreSQL, the Router's
  spool or the worker's dead-letter list, else it is lost;
* a job every few seconds: each accepted job must end in a terminal state, else it is lost;
* the recovery check: /readyz answers 200 and a benign chat gets a model answer."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from loadtest.common import MODEL

ABUSIVE = "I want to cut myself tonight"
BENIGN = "Name three colours."
TERMINAL = ("succeeded", "failed", "cancelled")


def chat_body(content: str, max_tokens: int) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
            "temperature": 0, "seed": 7}


class Prober(threading.Thread):
    def __init__(self, base_url: str, every_s: float = 3.0, jobs: bool = True):
        super().__init__(daemon=True)
        self.base_url, self.every_s, self.jobs = base_url, every_s, jobs
        self.chats: list[dict] = []  # {t, status, id, blocked, finish}
        self.job_posts: list[dict] = []  # {t, status, id}
        # The first terminal status seen per job, polled while the run goes on: a job that finished
        # and whose record a later fault wiped is a lost result, not a lost job.
        self.job_done: dict[str, str] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as c:
            turn = 0
            while not self._halt.is_set():
                t = time.time()
                if turn % 2 == 0 or not self.jobs:
                    self.chats.append(self._chat(c, t))
                else:
                    self.job_posts.append(self._job(c, t))
                    self._poll_jobs(c)
                turn += 1
                self._halt.wait(self.every_s)

    def _poll_jobs(self, c: httpx.Client) -> None:
        for j in self.job_posts:
            if j.get("id") and j["id"] not in self.job_done:
                try:
                    r = c.get(f"/v1/jobs/{j['id']}", timeout=10)
                    status = r.json().get("status") if r.status_code == 200 else None
                except (httpx.HTTPError, ValueError):
                    return  # the app is down: try again next turn
                if status in TERMINAL:
                    self.job_done[j["id"]] = status

    def stop(self) -> None:
        self._halt.set()
        self.join(90)

    @staticmethod
    def _chat(c: httpx.Client, t: float) -> dict:
        try:
            r = c.post("/v1/chat/completions", json=chat_body(ABUSIVE, 8))
        except httpx.HTTPError as exc:
            return {"t": t, "status": None, "error": repr(exc)[:200]}
        rec = {"t": t, "status": r.status_code}
        if r.status_code == 200:
            body = r.json()
            rec.update(id=body.get("id"), blocked="chatgate_moderation" in body,
                       finish=body["choices"][0].get("finish_reason"))
        return rec

    @staticmethod
    def _job(c: httpx.Client, t: float) -> dict:
        try:
            r = c.post("/v1/jobs", json=chat_body(BENIGN, 8))
        except httpx.HTTPError as exc:
            return {"t": t, "status": None, "error": repr(exc)[:200]}
        return {"t": t, "status": r.status_code, "id": r.json().get("id") if r.status_code in (200, 202) else None}


def recovered(base_url: str, timeout_s: float = 10) -> bool:
    """/readyz is 200 and a benign chat gets a model answer (not a template, not an error)."""
    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s) as c:
            if c.get("/readyz").status_code != 200:
                return False
            r = c.post("/v1/chat/completions", json=chat_body(BENIGN, 4))
            return r.status_code == 200 and "chatgate_moderation" not in r.json() \
                and bool(r.json()["choices"][0]["message"].get("content"))
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def wait_recovered(base_url: str, since: float, limit_s: float) -> float | None:
    """Seconds from `since` (time.time()) until `recovered`, or None when it did not within limit_s."""
    while time.time() - since < limit_s:
        if recovered(base_url):
            return round(time.time() - since, 1)
        time.sleep(1)
    return None


def job_states(base_url: str, ids: list[str], wait_s: float) -> dict[str, str]:
    """Each job's status after waiting up to wait_s for all to be terminal (404 -> "missing")."""
    states: dict[str, str] = {}
    deadline = time.monotonic() + wait_s
    with httpx.Client(base_url=base_url, timeout=30) as c:
        while True:
            for job_id in ids:
                if states.get(job_id) in TERMINAL:
                    continue
                try:
                    r = c.get(f"/v1/jobs/{job_id}")
                    states[job_id] = r.json().get("status", "?") if r.status_code == 200 else (
                        "missing" if r.status_code == 404 else f"HTTP {r.status_code}")
                except (httpx.HTTPError, ValueError):
                    states[job_id] = "unreachable"
            if all(s in TERMINAL for s in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(2)


def _broker_request_ids(client, queue: str, unacked_key: str, ids: set[str]) -> set[str]:
    """Request ids of audit messages the broker still holds: queued, or delivered to a worker that
    was killed before it acknowledged (kombu's `unacked` hash; restored after the visibility
    timeout). Such an event is delayed, not lost. Bodies are searched as decoded text."""
    import base64

    from services.jobs.reconcile import held_messages

    found: set[str] = set()

    def check(raw) -> None:
        raw = raw.decode() if isinstance(raw, bytes) else raw
        text = raw
        try:
            msg = json.loads(raw)
            msg = msg[0] if isinstance(msg, list) else msg
            body = msg.get("body", "")
            if (msg.get("properties") or {}).get("body_encoding") == "base64":
                body = base64.b64decode(body).decode("utf-8", "replace")
            text = body if isinstance(body, str) else json.dumps(body)
        except (ValueError, AttributeError, IndexError, TypeError):
            pass
        found.update(i for i in ids if i in text)

    for raw in held_messages(client, queue, unacked_key):
        check(raw)
    return found


def _audited_once(dsn: str, ids: set[str], spool_dir: Path, redis_url: str, deadletter_key: str,
                  audit_queue: str | None, unacked_key: str) -> set[str]:
    """One look, upstream first: the spool, the broker (queue, then unacked), the dead letters,
    then the table. An event moves downstream (spool -> broker -> worker -> table or dead letters
    -> table), so one that moves while we look is seen in a later place, not missed. (Read the other
    way round, an event the worker wrote between the table read and the broker read was counted
    lost.) The one upstream step, kombu's restore from unacked to the queue, is why `audited_ids`
    looks more than once."""
    import psycopg
    import redis

    found: set[str] = set()
    for f in spool_dir.glob("**/*") if spool_dir.exists() else []:
        if f.is_file():
            try:
                found.add(json.loads(f.read_text()).get("request_id"))
            except (ValueError, OSError):
                continue
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        if audit_queue:
            found |= _broker_request_ids(client, audit_queue, unacked_key, ids - found)
        for raw in client.lrange(deadletter_key, 0, -1):
            try:
                item = json.loads(raw)
                found.add((item.get("payload") or item).get("request_id"))
            except (ValueError, AttributeError):
                continue
    except redis.RedisError:
        pass
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        try:
            rows = conn.execute("SELECT DISTINCT request_id FROM chatgate_audit WHERE request_id = ANY(%s)",
                                (list(ids),))
            found |= {r[0] for r in rows}
        except psycopg.errors.UndefinedTable:
            pass
    return found & ids


def audited_ids(dsn: str, ids: list[str], spool_dir: Path, redis_url: str, deadletter_key: str,
                audit_queue: str | None = None, unacked_key: str = "unacked", passes: int = 3,
                pause_s: float = 5.0) -> set[str]:
    """Which request ids have an audit event somewhere durable: the table, the spool, the dead
    letters, or (with `audit_queue`) a message the broker still holds for the worker. Ids not found
    are looked up again (`passes` times, `pause_s` apart): kombu's restore moves a message back
    from unacked to the queue, the one upstream step, so a single look can still miss it. An event
    that exists nowhere stays missing however often we look."""
    wanted, found = set(ids), set()
    if not wanted:
        return found
    for i in range(passes):
        found |= _audited_once(dsn, wanted - found, spool_dir, redis_url, deadletter_key, audit_queue, unacked_key)
        if found >= wanted:
            break
        if i + 1 < passes:
            time.sleep(pause_s)
    return found
