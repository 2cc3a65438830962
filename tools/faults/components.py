"""The components the fault suite kills and brings back: a private PostgreSQL, a Celery worker, the
live app's own Redis, and Ray Serve replicas (Ray actor kill; Serve starts a new one itself).

Everything here is started by the suite for the suite: the machine's shared PostgreSQL and Redis
are never touched."""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from services.moderation.process import PROCESS_TITLE
from tools.launch import ROOT, free_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]), None)
    if not found:
        raise RuntimeError(f"no PostgreSQL `{name}` binary (install the postgresql package)")
    return found


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free port (trust auth, user postgres). As root the
    server runs as the `postgres` user, since PostgreSQL refuses to run as root."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="chatgate-faults-pg-"))
        self.data = self.dir / "data"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120, check=check)

    def init(self) -> "PostgresServer":
        if self._as:
            shutil.chown(self.dir, "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self.start()

    def start(self) -> "PostgresServer":
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "pg.log"), "-w", "start")
        return self

    def kill(self) -> None:
        """A crash, not a clean stop: the postmaster and its backends are killed at once."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)

    def destroy(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class CeleryWorker:
    """One Celery worker process (jobs and audit queues) with the live app's environment."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "CeleryWorker":
        module = "services.queue.worker" if importlib.util.find_spec("services.queue.worker") else "services.jobs.worker"
        self.starts += 1
        log = (self.log_dir / f"worker-{self.starts}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--hostname", f"faults-{os.getpid()}@%h",
                                      "--metrics-port", "0"], env=self.env, cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def replica_processes(deployment: str) -> list[psutil.Process]:
    """The live processes of a deployment's replicas (Ray titles them ray::ServeReplica:APP:NAME)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "ServeReplica:" in cmd and cmd.split("ServeReplica:", 1)[1].split()[0].endswith(f":{deployment}"):
            found.append(p)
    return found


def kill_replica(ray_address: str, deployment: str) -> list[int]:
    """`ray.kill` every replica actor of `deployment` (Serve's controller replaces them). Returns the
    pids of the killed replicas' child processes (e.g. vLLM's EngineCore) for `reap`."""
    import ray

    if not ray.is_initialized():
        ray.init(address=ray_address, namespace="serve", log_to_driver=False, logging_level="ERROR")
    children = [c.pid for p in replica_processes(deployment) for c in p.children(recursive=True)]
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if f"#{deployment}#" in a["name"] and a["name"].startswith("SERVE_REPLICA")]
    if not names:
        raise RuntimeError(f"no replica actor of {deployment}")
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"))
    return children


def kill_scanner_processes(deployment: str = "Router") -> list[int]:
    """SIGKILL the scanner processes a replica owns (moderation.router_checks: children of the
    Router titled PROCESS_TITLE). Returns their pids."""
    killed = []
    for replica in replica_processes(deployment):
        for child in replica.children(recursive=True):
            try:
                if PROCESS_TITLE in " ".join(child.cmdline()):
                    child.kill()
                    killed.append(child.pid)
            except psutil.NoSuchProcess:
                continue
    if not killed:
        raise RuntimeError(f"no scanner process under {deployment}")
    return killed


def reap(pids: list[int], grace_s: float = 15.0) -> int:
    """Kill what is left of a killed replica's children after a grace period; returns how many."""
    deadline = time.monotonic() + grace_s
    alive = [p for p in (_proc(pid) for pid in pids) if p]
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return len(alive)


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
