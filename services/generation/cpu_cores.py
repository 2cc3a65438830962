"""Cores of its own for the engine on a CPU host, and chatgate's other busy processes kept off them.

With `generator.cpu_omp_threads_bind: dedicated` (the default) the engine computes on the last
`cpu_threads` cores of the host (vLLM's VLLM_CPU_OMP_THREADS_BIND); tools/run.sh starts Ray and
`serve run` on the other cores, so every replica, the Router's scanner processes and vLLM's
EngineCore run there, and the Generator replica pins itself (and EngineCore) there whatever
launched it, once its engine has loaded: the load itself runs on every core (EngineLoadCores). Why: left to the scheduler, a moderation check or a relayed token woke up on the engine's
core and preempted a decode step while the other core idled; bare vLLM's worker ran 0.95 of a
core, chatgate's 0.82-0.88 (docs/benchmark.md, experiment G). Any other value is passed to vLLM
unchanged and pins nothing (`nobind`: the scheduler places everything).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from services.config import GeneratorSettings

DEDICATED = "dedicated"
CPUSET = Path("/sys/fs/cgroup/cpuset.cpus.effective")  # cgroup v2: the cores this container may use
log = logging.getLogger(__name__)


def on_gpu() -> bool:
    """A GPU engine computes on the GPU: its host's cores are not pinned."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def parse_cpu_list(text: str) -> list[int]:
    """'0-2,5' -> [0, 1, 2, 5] (the kernel's cpu list format)."""
    cores: set[int] = set()
    for part in text.strip().split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cores.update(range(int(lo), int(hi) + 1))
        elif part:
            cores.add(int(part))
    return sorted(cores)


def host_cores() -> list[int]:
    """Every core this host (or container) may use; not this process's affinity, which pinning changes."""
    try:
        cores = parse_cpu_list(CPUSET.read_text())
        if cores:
            return cores
    except (OSError, ValueError):
        pass
    return list(range(os.cpu_count() or 1))


def engine_cores(settings: GeneratorSettings, cores: list[int] | None = None) -> list[int] | None:
    """The engine's own cores, or None when nothing is pinned (another bind value, or too few cores
    to leave one for the rest)."""
    cores = host_cores() if cores is None else cores
    if settings.cpu_omp_threads_bind != DEDICATED or len(cores) <= settings.cpu_threads:
        return None
    return cores[-settings.cpu_threads:]


def omp_threads_bind(settings: GeneratorSettings) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for the engine."""
    if settings.cpu_omp_threads_bind != DEDICATED:
        return settings.cpu_omp_threads_bind
    mine = engine_cores(settings)
    return ",".join(map(str, mine)) if mine else "nobind"


def other_cores(settings: GeneratorSettings) -> list[int] | None:
    """The cores chatgate's other processes use, or None when nothing is pinned (also on a GPU host)."""
    mine = engine_cores(settings)
    if not mine or on_gpu():
        return None
    return [c for c in host_cores() if c not in mine]


def thread_ids() -> list[int]:
    """This process's threads: niceness and affinity belong to each thread, not to the process."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc (not Linux)
        return []


def set_affinity(tids: list[int], cores: list[int], only_if: set[int] | None = None) -> int:
    """Pins the given threads to `cores` (only those whose affinity is `only_if`, when given).
    Returns how many moved; a thread that ended meanwhile or is not ours is skipped."""
    moved = 0
    for tid in tids:
        try:
            if only_if is not None and os.sched_getaffinity(tid) != only_if:
                continue
            os.sched_setaffinity(tid, cores)
            moved += 1
        except OSError:
            continue
    return moved


def keep_off_engine_cores(settings: GeneratorSettings, role: str) -> list[int] | None:
    """Pin every thread of this process (and so the processes it starts later) to the cores the
    engine does not compute on."""
    others = other_cores(settings)
    if not others or not hasattr(os, "sched_setaffinity"):
        return None
    set_affinity(thread_ids() or [0], others)
    log.info("%s (pid %d) on cores %s; the engine computes on %s", role, os.getpid(), others, engine_cores(settings))
    return others


def descendant_threads() -> list[int]:
    """The threads of every process this one started, at any depth (vLLM's EngineCore and its worker)."""
    import psutil  # vLLM's own dependency: this runs only where an engine loads

    tids = []
    for child in psutil.Process().children(recursive=True):
        try:
            tids += [t.id for t in child.threads()]
        except psutil.Error:  # ended meanwhile
            continue
    return tids


class EngineLoadCores:
    """Context for loading the engine on every core, then keeping the engine's cores to its compute.

    While the engine loads (imports of torch and vLLM in three processes, weights, warm-up), its own
    cores are idle: after a crash the new replica would otherwise load on the cores that serve the
    live traffic (the Router, the checks) and take twice as long (docs/faults.md, session 28). On
    exit the replica and every process it started are pinned off the engine's cores, except the
    threads vLLM bound there itself (its OMP compute threads), which is the state a replica pinned
    from the start ends in.
    """

    def __init__(self, settings: GeneratorSettings, role: str):
        self.settings, self.role = settings, role
        self.others = other_cores(settings) if hasattr(os, "sched_setaffinity") else None
        self.every = host_cores()

    def __enter__(self) -> "EngineLoadCores":
        if self.others:
            set_affinity(thread_ids() or [0], self.every)
            log.info("%s (pid %d) loads the engine on cores %s", self.role, os.getpid(), self.every)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.others:
            return
        keep_off_engine_cores(self.settings, self.role)
        moved = set_affinity(descendant_threads(), self.others, only_if=set(self.every))
        log.info("%s: %d threads of the engine's processes moved to cores %s", self.role, moved, self.others)


def main(argv: list[str] | None = None) -> int:
    """`python -m services.generation.cpu_cores [SERVE_CONFIG]`: the cores tools/run.sh starts Ray and
    `serve run` on (so every replica and daemon inherits them), or nothing when nothing is pinned."""
    import sys

    import yaml

    from services.config import load_settings

    argv = sys.argv[1:] if argv is None else argv
    args: dict = {}
    if argv:
        apps = (yaml.safe_load(Path(argv[0]).read_text()) or {}).get("applications") or [{}]
        args = apps[0].get("args") or {}
    others = other_cores(load_settings(args).generator)
    if others:
        print(",".join(map(str, others)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
