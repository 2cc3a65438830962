"""Re-publishes jobs whose Celery message is gone (issue #13).

A message can vanish while its record stays queued/running: a worker killed between BRPOP and
kombu recording the message in `unacked`, an unacked hash lost with a Redis restart, a reject
after a failed re-publish. The record and the request bodies live in the job store, so a pass
every `jobs.reconcile_interval_s` re-publishes such a job from there.

A re-published job may still have a copy somewhere (a message restored later, a race with a
delivery): duplicates are harmless, since a delivery needs the lease to run, status changes are
compare-and-set and item results are written once (HSETNX), see tasks.py.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import redis

from services.jobs import metrics
from services.jobs.models import TERMINAL
from services.jobs.store import JobStore

log = logging.getLogger("chatgate.jobs.reconcile")

BATCH = 500  # jobs looked at per pass: bounds a pass's time under the lock
SCAN_CHUNK = 1000


@dataclass
class Plan:
    republish: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)  # terminal or expired: leaves the work list
    later: list[str] = field(default_factory=list)  # leased or message present: check again later


def plan(job_ids: Iterable[str], statuses: dict[str, str | None], leased: set[str], present: set[str]) -> Plan:
    """Which stale jobs to re-publish: not terminal, not leased, message neither queued nor unacked."""
    out = Plan()
    for jid in job_ids:
        status = statuses.get(jid)
        if status is None or status in TERMINAL:
            out.drop.append(jid)
        elif jid in leased or jid in present:
            out.later.append(jid)
        else:
            out.republish.append(jid)
    return out


def _task_id(raw: str) -> str | None:
    msg = json.loads(raw)
    if isinstance(msg, list):  # unacked hash value: [message, exchange, routing_key]
        msg = msg[0]
    return (msg.get("headers") or {}).get("id")


def held_messages(broker: redis.Redis, queue: str, unacked_key: str) -> Iterator[Any]:
    """Every raw message the broker holds for `queue`: the queue list, then kombu's unacked hash
    (read in that order, a message popped in between is still seen)."""
    start = 0
    while True:
        chunk = broker.lrange(queue, start, start + SCAN_CHUNK - 1)
        yield from chunk
        if len(chunk) < SCAN_CHUNK:
            break
        start += SCAN_CHUNK
    for _, raw in broker.hscan_iter(unacked_key, count=SCAN_CHUNK):
        yield raw


def present_task_ids(broker: redis.Redis, queue: str, unacked_key: str, wanted: set[str]) -> set[str]:
    """Which of `wanted` have a message in the queue list or kombu's unacked hash.
    A message that cannot be parsed counts as present when it mentions a wanted id (no false loss).
    """
    found: set[str] = set()
    for raw in held_messages(broker, queue, unacked_key):
        raw = raw.decode() if isinstance(raw, bytes) else raw
        try:
            tid = _task_id(raw)
        except (ValueError, AttributeError, IndexError, TypeError):
            found.update(w for w in wanted if w in raw)
            continue
        if tid in wanted:
            found.add(tid)
    return found


class Reconciler:
    def __init__(self, store: JobStore, broker: redis.Redis, publish: Callable[[str, list[dict[str, Any]]], None],
                 *, queue: str, unacked_key: str, after_s: float, interval_s: float):
        self.store, self.broker, self.publish = store, broker, publish
        self.queue, self.unacked_key = queue, unacked_key
        self.after_s, self.interval_s = after_s, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> list[str]:
        """One pass under the cross-worker lock; returns the re-published job ids."""
        now = time.time() if now is None else now
        token = uuid.uuid4().hex
        # The TTL only frees the lock of a worker that died mid-pass.
        if not self.store.try_lock(token, max(10.0, 2 * self.interval_s)):
            return []
        try:
            ids = self.store.stale_active(now - self.after_s, BATCH)
            if not ids:
                return []
            statuses, leased = self.store.states(ids)
            unsure = plan(ids, statuses, leased, set()).republish  # only these need the broker scan
            present = present_task_ids(self.broker, self.queue, self.unacked_key, set(unsure)) if unsure else set()
            p = plan(ids, statuses, leased, present)
            self.store.drop_active(p.drop)
            self.store.mark_seen(p.later, now)
            done = []
            for jid in p.republish:
                bodies = self.store.bodies(jid)
                if bodies is None:  # expired since, or created before bodies were stored
                    log.warning("job %s lost its message and has no stored bodies; cannot re-publish", jid)
                    self.store.drop_active([jid])
                    continue
                self.publish(jid, bodies)
                self.store.mark_requeued(jid, now)
                metrics.JOBS_REQUEUED.inc()
                log.warning("job %s (%s) had no message in the broker; re-published", jid, statuses[jid])
                done.append(jid)
            return done
        finally:
            self.store.unlock(token)

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception as exc:  # a broker/store outage: the next pass tries again
                log.warning("reconcile pass failed: %r", exc)
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> "Reconciler":
        self._thread = threading.Thread(target=self._loop, name="jobs-reconcile", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
