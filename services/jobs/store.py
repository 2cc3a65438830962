"""Job records in Redis: one hash per job, one hash of item results, a lease while running.

Keys (prefix `chatgate:jobs:`), all with TTL = result_ttl_s (refreshed when the job finishes):
  job:{id}            hash: status, kind, total, counters, timestamps, attempts, retries, ...
  job:{id}:results    hash: item index -> JSON item result (written once per index)
  job:{id}:lease      string: token of the worker running the job (short TTL, heart-beaten)
  job:{id}:bodies     string: JSON request bodies, so a job whose Celery message was lost can be
                      re-published (services/jobs/reconcile.py)
  active              sorted set (no TTL): job id -> last (re)publish or sighting of its message;
                      the reconciler's work list, pruned by it once a job is terminal or expired
  idem:{sha256(key)}  string: JSON {"job_id", "body_hash"} for Idempotency-Key
Status changes are compare-and-set in Lua, so cancel and start cannot both win.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from services.jobs.models import JobRecord

PREFIX = "chatgate:jobs:"

# KEYS[1] job hash; ARGV[1] comma list of allowed current statuses; ARGV[2] new status;
# ARGV[3..] extra field/value pairs. Returns {1, old} on success, {0, old} if refused, nil if missing.
_CAS = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return nil end
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == cur then
    redis.call('HSET', KEYS[1], 'status', ARGV[2])
    for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    return {1, cur}
  end
end
return {0, cur}
"""
# KEYS[1] job hash, KEYS[2] results hash; ARGV: index, json, counter field, blocked(0/1), ttl
_PUT_RESULT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'completed', 1)
  redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
  if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'blocked', 1) end
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
  return 1
end
return 0
"""
# KEYS[1] lease; ARGV[1] token; ARGV[2] ttl ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def results_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:results"


def lease_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:lease"


def bodies_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:bodies"


ACTIVE_KEY = f"{PREFIX}active"
RECONCILE_LOCK_KEY = f"{PREFIX}reconcile:lock"


def idem_key(digest: str) -> str:
    return f"{PREFIX}idem:{digest}"


def _cas_result(raw: Any) -> tuple[bool, str | None]:
    if raw is None:
        return False, None
    ok, cur = raw
    return bool(ok), (cur.decode() if isinstance(cur, bytes) else cur)


class AsyncJobStore:
    """Used by the API (Router event loop)."""

    def __init__(self, url: str, ttl_s: int):
        self.ttl_s = ttl_s
        self.r = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
        self._cas = self.r.register_script(_CAS)

    async def create(self, rec: JobRecord, *, bodies: list[dict[str, Any]], idem_digest: str | None = None,
                     body_hash: str = "") -> tuple[bool, str]:
        """Create the record; with an idempotency key, only if the key is new.

        Returns (created, job_id): job_id is the existing job's id when the key was already used.
        """
        if idem_digest:
            claim = json.dumps({"job_id": rec.id, "body_hash": body_hash})
            ok = await self.r.set(idem_key(idem_digest), claim, nx=True, ex=self.ttl_s)
            if not ok:
                existing = await self.r.get(idem_key(idem_digest))
                if existing is None:  # expired between SET and GET: try once more
                    ok = await self.r.set(idem_key(idem_digest), claim, nx=True, ex=self.ttl_s)
                if not ok:
                    return False, existing or ""
        async with self.r.pipeline(transaction=True) as p:
            p.hset(job_key(rec.id), mapping=rec.to_hash())
            p.expire(job_key(rec.id), self.ttl_s)
            p.set(bodies_key(rec.id), json.dumps(bodies), ex=self.ttl_s)
            p.zadd(ACTIVE_KEY, {rec.id: rec.created_at})
            await p.execute()
        return True, rec.id

    async def forget(self, job_id: str, idem_digest: str | None) -> None:
        """Undo `create` (the enqueue failed)."""
        keys = [job_key(job_id), bodies_key(job_id)] + ([idem_key(idem_digest)] if idem_digest else [])
        async with self.r.pipeline(transaction=True) as p:
            p.delete(*keys)
            p.zrem(ACTIVE_KEY, job_id)
            await p.execute()

    async def get(self, job_id: str) -> JobRecord | None:
        async with self.r.pipeline(transaction=True) as p:
            p.hgetall(job_key(job_id))
            p.hgetall(results_key(job_id))
            h, res = await p.execute()
        return JobRecord.from_hash(h, res) if h else None

    async def cas(self, job_id: str, allowed: str, new: str, **fields: Any) -> tuple[bool, str | None]:
        args: list[Any] = [allowed, new]
        for k, v in fields.items():
            args += [k, v]
        return _cas_result(await self._cas(keys=[job_key(job_id)], args=args))

    async def request_cancel(self, job_id: str) -> None:
        await self.r.hset(job_key(job_id), "cancel_requested", "1")

    async def close(self) -> None:
        await self.r.aclose()


class JobStore:
    """Used by the worker (threads)."""

    def __init__(self, url: str, ttl_s: int):
        self.ttl_s = ttl_s
        self.r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5)
        self._cas = self.r.register_script(_CAS)
        self._put = self.r.register_script(_PUT_RESULT)
        self._renew = self.r.register_script(_RENEW)
        self._release = self.r.register_script(_RELEASE)

    def get(self, job_id: str) -> JobRecord | None:
        with self.r.pipeline(transaction=True) as p:
            p.hgetall(job_key(job_id))
            p.hgetall(results_key(job_id))
            h, res = p.execute()
        return JobRecord.from_hash(h, res) if h else None

    def done_indices(self, job_id: str) -> set[int]:
        return {int(k) for k in self.r.hkeys(results_key(job_id))}

    def cancel_requested(self, job_id: str) -> bool:
        return self.r.hget(job_key(job_id), "cancel_requested") == "1"

    def cas(self, job_id: str, allowed: str, new: str, **fields: Any) -> tuple[bool, str | None]:
        args: list[Any] = [allowed, new]
        for k, v in fields.items():
            args += [k, v]
        return _cas_result(self._cas(keys=[job_key(job_id)], args=args))

    def set_fields(self, job_id: str, **fields: Any) -> None:
        if self.r.exists(job_key(job_id)):
            self.r.hset(job_key(job_id), mapping={k: str(v) for k, v in fields.items()})

    def incr(self, job_id: str, field: str, by: int = 1) -> None:
        self.r.hincrby(job_key(job_id), field, by)

    def put_result(self, job_id: str, index: int, item: dict[str, Any]) -> bool:
        counter = {"succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"}[item["status"]]
        blocked = "1" if (item.get("moderation") or {}).get("outcome") == "blocked" else "0"
        return self._put(keys=[job_key(job_id), results_key(job_id)],
                         args=[index, json.dumps(item), counter, blocked, self.ttl_s]) == 1

    def touch(self, job_id: str) -> None:
        with self.r.pipeline(transaction=False) as p:
            p.expire(job_key(job_id), self.ttl_s)
            p.expire(results_key(job_id), self.ttl_s)
            p.expire(bodies_key(job_id), self.ttl_s)
            p.execute()

    # --- reconciler (services/jobs/reconcile.py) ----------------------------------------------
    def stale_active(self, before: float, limit: int) -> list[str]:
        return list(self.r.zrangebyscore(ACTIVE_KEY, "-inf", before, start=0, num=limit))

    def states(self, job_ids: list[str]) -> tuple[dict[str, str | None], set[str]]:
        """(status per job, None when the record is gone; the jobs whose lease is held)."""
        with self.r.pipeline(transaction=False) as p:
            for jid in job_ids:
                p.hget(job_key(jid), "status")
                p.exists(lease_key(jid))
            out = p.execute()
        statuses = dict(zip(job_ids, out[0::2]))
        return statuses, {jid for jid, held in zip(job_ids, out[1::2]) if held}

    def bodies(self, job_id: str) -> list[dict[str, Any]] | None:
        raw = self.r.get(bodies_key(job_id))
        return json.loads(raw) if raw is not None else None

    def mark_seen(self, job_ids: list[str], now: float) -> None:
        if job_ids:
            self.r.zadd(ACTIVE_KEY, {jid: now for jid in job_ids}, xx=True)

    def drop_active(self, job_ids: list[str]) -> None:
        if job_ids:
            self.r.zrem(ACTIVE_KEY, *job_ids)

    def mark_requeued(self, job_id: str, now: float) -> None:
        self.set_fields(job_id, requeued_at=repr(now))
        self.r.zadd(ACTIVE_KEY, {job_id: now}, xx=True)

    def try_lock(self, token: str, ttl_s: float) -> bool:
        return bool(self.r.set(RECONCILE_LOCK_KEY, token, nx=True, px=int(ttl_s * 1000)))

    def unlock(self, token: str) -> None:
        self._release(keys=[RECONCILE_LOCK_KEY], args=[token])

    # --- lease -------------------------------------------------------------------------------
    def acquire_lease(self, job_id: str, token: str, ttl_s: float) -> bool:
        return bool(self.r.set(lease_key(job_id), token, nx=True, px=int(ttl_s * 1000)))

    def renew_lease(self, job_id: str, token: str, ttl_s: float) -> bool:
        return bool(self._renew(keys=[lease_key(job_id)], args=[token, int(ttl_s * 1000)]))

    def release_lease(self, job_id: str, token: str) -> None:
        self._release(keys=[lease_key(job_id)], args=[token])


class LeaseHeartbeat:
    """Keeps a job lease alive from a side thread while the task thread is blocked on HTTP."""

    def __init__(self, store: JobStore, job_id: str, token: str, ttl_s: float):
        self.store, self.job_id, self.token, self.ttl_s = store, job_id, token, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id[:8]}", daemon=True)
        self.lost = False

    def __enter__(self) -> "LeaseHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            self.store.release_lease(self.job_id, self.token)
        except redis.RedisError:
            pass  # it expires on its own

    def _run(self) -> None:
        interval = max(self.ttl_s / 3.0, 0.2)
        while not self._stop.wait(interval):
            try:
                if not self.store.renew_lease(self.job_id, self.token, self.ttl_s):
                    self.lost = True
            except redis.RedisError:
                time.sleep(0.1)
