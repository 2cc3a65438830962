"""Where the CPU goes during a load level: CPU seconds per process role between two snapshots,
shown as cores (seconds / wall). Read before and after each level, never during it, so the
accounting costs the measured system nothing (one /proc read per process)."""
from __future__ import annotations

import os
import re
import time

import psutil

_REPLICA = re.compile(r"ServeReplica:[^:\s]+:(\w+)")
# What chatgate runs besides its replicas, so that the serving system's own overhead is named,
# not lumped: (role, substring of the process name or command line), first match wins.
_DAEMONS = (
    ("Ray GCS", "gcs_server"),
    ("Ray raylet", "raylet/raylet"),  # the binary's path: other daemons carry --raylet-name
    ("Ray dashboard", "dashboard/dashboard.py"),
    ("Ray dashboard", "ray-dashboard-"),  # the dashboard's module subprocesses
    ("Ray dashboard agent", "dashboard/agent.py"),
    ("Ray dashboard agent", "DashboardAgent"),  # its process title
    ("Ray runtime-env agent", "runtime_env/agent/main.py"),
    ("Ray log monitor", "log_monitor.py"),
    ("Ray monitor", "autoscaler/_private/monitor.py"),
    ("Router scanner processes", "chatgate::ScannerProcess"),  # moderation.router_checks
    ("Serve controller", "ServeController"),
    ("Serve proxy", "ProxyActor"),
    ("HAProxy", "haproxy"),
    ("serve run (driver)", "bin/serve run"),
    ("Celery worker", "services.queue.worker"),
    ("run.sh bookkeeping", "runscope.py"),
    ("Redis", "redis-server"),
)


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
    for role, marker in _DAEMONS:
        if marker in name or marker in cmdline:
            return role
    return "other"


def runqueue_wait_s(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (/proc schedstat, 2nd
    field): a process on the engine's critical path that waits here delays every step."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


class CpuSnapshot:
    def __init__(self):
        self.t = time.monotonic()
        self.machine = psutil.cpu_times()
        self.by_pid: dict[int, tuple[str, float]] = {}
        self.waits: dict[int, float] = {}
        for p in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
            try:
                ct = p.info["cpu_times"]
                if ct is None:
                    continue
                role = role_of(p.info["name"] or "", " ".join(p.info["cmdline"] or []), p.pid)
                self.by_pid[p.pid] = (role, ct.user + ct.system + ct.children_user + ct.children_system)
                self.waits[p.pid] = runqueue_wait_s(p.pid)
            except (psutil.Error, TypeError):
                continue

    def cores_since(self, before: "CpuSnapshot") -> dict[str, float]:
        """Cores each role used between `before` and now; `machine busy` is the whole box's."""
        wall = max(self.t - before.t, 1e-6)
        cpu_s = lambda snap: {pid: cpu for pid, (_, cpu) in snap.by_pid.items()}  # noqa: E731
        out = self._per_role(cpu_s(self), cpu_s(before), wall, 2)
        idle = lambda c: c.idle + getattr(c, "iowait", 0.0)  # noqa: E731
        total = lambda c: sum(c)  # noqa: E731
        busy = (total(self.machine) - total(before.machine)) - (idle(self.machine) - idle(before.machine))
        out["machine busy"] = round(busy / wall, 2)
        # CPU the hypervisor gave to other guests: a run with much of it measured a slower machine
        out["machine steal"] = round((getattr(self.machine, "steal", 0.0) - getattr(before.machine, "steal", 0.0)) / wall, 2)
        return out

    def waits_since(self, before: "CpuSnapshot") -> dict[str, float]:
        """Per role, the share of wall time its threads waited for a CPU while runnable (summed
        over threads), between `before` and now."""
        return self._per_role(self.waits, before.waits, max(self.t - before.t, 1e-6), 3)

    def _per_role(self, now: dict[int, float], before: dict[int, float], wall: float, digits: int) -> dict[str, float]:
        """Per role, the growth of a per-process counter over `wall` seconds, largest first; a
        process born since `before` counts from zero; shares under the last digit are left out."""
        roles: dict[str, float] = {}
        for pid, value in now.items():
            grown = value - before.get(pid, 0.0)
            if grown > 0:
                role = self.by_pid[pid][0]
                roles[role] = roles.get(role, 0.0) + grown
        floor = 10.0 ** -digits
        return {role: round(v / wall, digits) for role, v in sorted(roles.items(), key=lambda kv: -kv[1]) if v / wall >= floor}
