"""A vLLM general plugin (entry point `vllm.general_plugins`, pyproject.toml): vLLM loads it in
every one of its processes (API server, EngineCore, workers), so chatgate's Generator and a bare
`vllm serve` from the same environment get the same engine.

It makes vLLM's shared-memory queue readers sleep briefly instead of spinning. After each read, a
reader busy-waits on `sched_yield()` for 1 s, so while requests run, the EngineCore process waiting
for its worker's step output burns most of a core doing nothing. On a GPU host that core is spare;
on a small CPU host it is the core that moderation, the Router and the client need (2 cores,
c=1: EngineCore 90 % CPU beside the worker's 99 %). With `CHATGATE_VLLM_SPIN_SLEEP_S` set (the
Generator sets it on CPU: `generator.cpu_spin_sleep_ms`), each spin turn sleeps that long instead:
a few hundred microseconds of latency per step read, against a 40-90 ms CPU decode step.

Making the readers wait on vLLM's zmq notification (busy_loop_s=0) was tried first and stalls
requests for 5 s at a time: a notification can be dropped (PUB high-water mark 1), and only the
spinning hides that.
"""
from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)
ENV = "CHATGATE_VLLM_SPIN_SLEEP_S"


def register() -> None:
    sleep_s = float(os.environ.get(ENV) or 0)
    if sleep_s <= 0:
        return
    try:
        from vllm.distributed.device_communicators import shm_broadcast

        shm_broadcast.sched_yield  # noqa: B018 - the name this plugin replaces must exist
    except (ImportError, AttributeError) as exc:  # another vLLM version: leave it alone, say so
        log.warning("%s: vLLM's shm_broadcast.sched_yield not found (%r); spinning unchanged", ENV, exc)
        return

    def nap() -> None:
        time.sleep(sleep_s)

    shm_broadcast.sched_yield = nap
