"""Where replicas run on a CPU host: off the engine's own cores, and at a lower priority if asked.

Linux niceness and affinity belong to each thread, so os.nice() alone would leave the threads a
replica already runs (gRPC, Ray's core worker) as they were; threads started later inherit them
from the thread that starts them.
"""
from __future__ import annotations

import contextlib
import logging
import os

from services.config import GeneratorSettings
from services.generation.cpu_cores import EngineLoadCores, thread_ids

log = logging.getLogger("ray.serve")


def in_replica() -> bool:
    """Inside a Serve replica (the unit tests build replicas in the pytest process itself)."""
    try:
        from ray import serve

        serve.get_replica_context()
    except Exception:  # noqa: BLE001 - not a replica (RayServeException), or no Ray at all
        return False
    return True


def engine_load_cores(settings: GeneratorSettings, role: str) -> contextlib.AbstractContextManager:
    """For the replica that hosts the engine (whatever launched it): the engine loads on every core
    (its own are idle until it computes), then the replica and vLLM's EngineCore leave the engine's
    cores to the engine. Only inside a Serve replica and on a CPU host. Other replicas do not pin
    themselves: on a cluster they may share no host with the engine; tools/run.sh pins them on one
    host."""
    return EngineLoadCores(settings, role) if in_replica() else contextlib.nullcontext()


def lower_priority(niceness: int) -> int:
    """Raise every thread of this process to at least `niceness` (never lowers one: that would
    need privileges). Returns how many threads were changed."""
    if niceness <= 0:
        return 0
    tids = thread_ids()
    if not tids:  # no /proc (not Linux): leave the process as it is
        return 0
    changed = 0
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
                changed += 1
        except OSError:  # the thread ended meanwhile
            continue
    log.info("process %d: %d threads at niceness %d (the engine gets the CPU first)", os.getpid(), changed, niceness)
    return changed
