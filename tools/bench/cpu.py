"""Where the CPU goes during a load level: CPU seconds per process role between two snapshots,
shown as cores (seconds / wall). Read before and after each level, never during it, so the
accounting costs the measured system nothing (one /proc read per process)."""
from __future__ import annotations

import os
import re
import time

import psutil

_REPLICA = re.compile(r"ServeReplica:[^:\s]+:(\w+)")


def role_of(name: str, cmdline: str, pid: int) -> str:
    if pid == os.getpid():
        return "bench client"
    if name.startswith("VLLM::Worker"):
        return "vLLM worker (model)"
    if name.startswith("VLLM::EngineCor"):
        return "vLLM EngineCore"
    if m := _REPLICA.search(cmdline):
        return f"Serve {m.group(1)}"
    if "vllm.entrypoints" in cmdline or name.startswith("VLLM::APIServer") or "APIServer" in name:
        return "vLLM API server"
    return "other"


class CpuSnapshot:
    def __init__(self):
        self.t = time.monotonic()
        self.machine = psutil.cpu_times()
        self.by_pid: dict[int, tuple[str, float]] = {}
        for p in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
            try:
                ct = p.info["cpu_times"]
                if ct is None:
                    continue
                role = role_of(p.info["name"] or "", " ".join(p.info["cmdline"] or []), p.pid)
                self.by_pid[p.pid] = (role, ct.user + ct.system + ct.children_user + ct.children_system)
            except (psutil.Error, TypeError):
                continue

    def cores_since(self, before: "CpuSnapshot") -> dict[str, float]:
        """Cores each role used between `before` and now; `machine busy` is the whole box's."""
        wall = max(self.t - before.t, 1e-6)
        roles: dict[str, float] = {}
        for pid, (role, cpu) in self.by_pid.items():
            # a process born during the level counts from zero
            spent = cpu - before.by_pid.get(pid, (role, 0.0))[1]
            if spent > 0:
                roles[role] = roles.get(role, 0.0) + spent
        idle = lambda c: c.idle + getattr(c, "iowait", 0.0)  # noqa: E731
        total = lambda c: sum(c)  # noqa: E731
        busy = (total(self.machine) - total(before.machine)) - (idle(self.machine) - idle(before.machine))
        out = {role: round(s / wall, 2) for role, s in sorted(roles.items(), key=lambda kv: -kv[1]) if s / wall >= 0.01}
        out["machine busy"] = round(busy / wall, 2)
        # CPU the hypervisor gave to other guests: a run with much of it measured a slower machine
        out["machine steal"] = round((getattr(self.machine, "steal", 0.0) - getattr(before.machine, "steal", 0.0)) / wall, 2)
        return out
