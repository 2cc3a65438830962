"""Process priority for the replicas that should yield the CPU to the engine (CPU hosts).

Linux niceness belongs to each thread, so os.nice() alone would leave the threads a replica
already runs (gRPC, Ray's core worker) at their old priority; threads started later inherit the
niceness of the thread that starts them.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger("ray.serve")


def lower_priority(niceness: int) -> int:
    """Raise every thread of this process to at least `niceness` (never lowers one: that would
    need privileges). Returns how many threads were changed."""
    if niceness <= 0:
        return 0
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc (not Linux): leave the process as it is
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
