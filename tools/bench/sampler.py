"""What the benchmark records besides latency: the machine it ran on and the memory of each system."""
from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path

import psutil


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    import vllm  # noqa: F401 - version only

    return {"cpu_model": model or platform.processor(), "logical_cpus": os.cpu_count(), "usable_cpus": affinity,
            "physical_cores": psutil.cpu_count(logical=False), "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "vllm": vllm.__version__, "platform": platform.platform(),
            "loadavg_start": os.getloadavg()}


# ------------------------------------------------------------------------------- memory sampler
class MemorySampler(threading.Thread):
    """Samples every process created since `start` (RSS, PSS, ppid, cmdline); which of them belong to
    the system is decided afterwards (`peak(select)`), when ports are known.

    Every few seconds while the system starts, then only between load levels (`hold()` stops the
    periodic sampling, `sample()` takes one): PSS reads /proc/PID/smaps_rollup, which walks each
    process's memory map, and for Ray's ~50 processes that costs enough CPU, in this very process,
    to slow the measured system during a level. Memory is allocated at start-up (weights, KV cache)
    and Python processes do not hand it back, so the between-level samples still see the peak."""

    def __init__(self, interval: float = 5.0):
        super().__init__(daemon=True)
        self.t0 = time.time() - 1.0
        self.interval = interval
        self.samples: list[dict[int, tuple[int, int]]] = []
        self.ppid: dict[int, int] = {}
        self.cmd: dict[int, str] = {}
        self._halt = threading.Event()
        self._held = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            if not self._held.is_set():
                self.sample()
            self._halt.wait(self.interval)

    def hold(self) -> None:
        self._held.set()

    def sample(self) -> None:
        with self._lock:
            snap: dict[int, tuple[int, int]] = {}
            for p in psutil.process_iter(["pid", "ppid", "create_time"]):
                try:
                    if p.info["create_time"] < self.t0 or p.pid == os.getpid():
                        continue
                    if p.pid not in self.cmd:
                        self.cmd[p.pid] = " ".join(p.cmdline())
                    self.ppid.setdefault(p.pid, p.info["ppid"])  # first sight: at shutdown they re-parent to 1
                    mi = p.memory_full_info()
                    snap[p.pid] = (mi.rss, getattr(mi, "pss", mi.rss))
                except Exception:  # noqa: BLE001 - a vanished/odd process must not end the sampling
                    continue
            if snap:
                self.samples.append(snap)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def members(self, roots: set[int], match: list[str]) -> set[int]:
        chosen = set(roots) | {pid for pid, c in self.cmd.items() if any(m in c + " " for m in match)}
        changed = True
        while changed:  # add descendants
            changed = False
            for pid, pp in self.ppid.items():
                if pp in chosen and pid not in chosen:
                    chosen.add(pid)
                    changed = True
        return chosen

    def peak(self, pids: set[int]) -> dict:
        best_rss = best_pss = 0
        for snap in self.samples:
            best_rss = max(best_rss, sum(v[0] for p, v in snap.items() if p in pids))
            best_pss = max(best_pss, sum(v[1] for p, v in snap.items() if p in pids))
        top = {}
        for snap in self.samples:
            for p, v in snap.items():
                if p in pids:
                    top[p] = max(top.get(p, 0), v[0])
        biggest = sorted(top.items(), key=lambda kv: -kv[1])[:6]
        others: dict[int, int] = {}
        for snap in self.samples:
            for p, v in snap.items():
                if p not in pids and v[0] > 100 * 2**20:
                    others[p] = max(others.get(p, 0), v[0])
        return {"samples": len(self.samples), "peak_rss_gib": round(best_rss / 2**30, 2), "peak_pss_gib": round(best_pss / 2**30, 2),
                "processes": len(pids),
                "largest": [{"pid": p, "rss_gib": round(r / 2**30, 2), "cmd": self.cmd.get(p, "")[:90]} for p, r in biggest],
                "not_counted_over_100mib": [{"pid": p, "rss_gib": round(r / 2**30, 2), "cmd": self.cmd.get(p, "")[:90],
                                             "ppid": self.ppid.get(p)} for p, r in others.items()]}
