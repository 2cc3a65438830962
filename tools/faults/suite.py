"""The fault run: the live app with its own Redis, PostgreSQL and Celery worker under a steady locust
load; each fault injected in turn, the component brought back, recovery timed; then overload."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from services.config import AdmissionSettings, AuditSettings, QueueSettings
from tools.faults import figures, probes
from tools.faults.components import CeleryWorker, PostgresServer, kill_replica, kill_scanner_processes, reap
from tools.launch import ROOT, LiveApp, start_live_app

REPLICAS = {"input-moderation": "InputModeration", "output-moderation": "OutputModeration", "generator": "Generator",
            "router": "Router"}
# router-checks: the Router's own scanner processes (moderation.router_checks) killed; the Router starts them again.
ALL = ["input-moderation", "output-moderation", "router-checks", "generator", "router", "redis", "postgres", "worker"]
SHORT = ["input-moderation", "redis", "worker"]
STEADY_MIX = "benign:2,stream:2,moderation:1"
OVERLOAD_MIX = "benign:1,stream:1"


@dataclass
class Stack:
    app: LiveApp
    pg: PostgresServer
    worker: CeleryWorker
    spool: Path

    def restartable(self, fault: str) -> tuple[Callable[[], None], Callable[[], None]]:
        return {"redis": (self.app.redis.stop, self.app.redis.start),
                "postgres": (self.pg.kill, self.pg.start),
                "worker": (self.worker.kill, self.worker.start)}[fault]


def start_stack(work: Path) -> Stack:
    pg = PostgresServer().init()
    spool = work / "audit-spool"
    # A message a killed worker held comes back after the visibility timeout: 60 s, not the default
    # 300 s, so a re-delivery lands within the run.
    env = {"CHATGATE_AUDIT__DSN": pg.dsn, "CHATGATE_AUDIT__SPOOL_DIR": str(spool),
           "CHATGATE_QUEUE__VISIBILITY_TIMEOUT_S": "60"}
    # Short answers keep the 2-core box responsive; the limit also bounds what the fuzzer may ask for.
    app = start_live_app(timeout_s=600, extra_env=env,
                         app_args={"generator": {"max_tokens_limit": 64, "default_max_tokens": 16}})
    worker = CeleryWorker(dict(app.env), work).start()
    return Stack(app, pg, worker, spool)


def locust(base_url: str, record: Path, users: int, mix: str, seconds: int, think_s: float, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless", "-H", base_url,
           "-u", str(users), "-r", str(max(1, users // 2)), "-t", f"{seconds}s", "--stop-timeout", "30",
           "--mix", mix, "--max-tokens", "16", "--think-time", str(think_s), "--request-timeout", "60",
           "--record", str(record), "--only-summary"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def inject(stack: Stack, fault: str, hold_s: float) -> float:
    """Breaks `fault` and returns the time (time.time()) the component was back (or restarting)."""
    print(f"[faults] {fault}: injecting", flush=True)
    if fault in REPLICAS:
        children = kill_replica(stack.app.env["RAY_ADDRESS"], REPLICAS[fault])
        threading.Thread(target=reap, args=(children,), daemon=True).start()  # e.g. vLLM's EngineCore
        return time.time()  # Serve's controller starts a new replica on its own
    if fault == "router-checks":
        print(f"[faults] router-checks: killed scanner processes {kill_scanner_processes()}", flush=True)
        return time.time()  # the next check starts them again
    down, up = stack.restartable(fault)
    down()
    time.sleep(hold_s)
    up()
    return time.time()


def run(faults: list[str], work: Path, baseline_s: float, hold_s: float, settle_s: float, recovery_limit_s: float,
        overload_s: int, capacity: int | None) -> dict:
    stack = start_stack(work)
    app = stack.app
    steady_rec = work / "steady.jsonl"
    load = locust(app.base_url, steady_rec, 3, STEADY_MIX, 4 * 3600, 1.0, work / "locust-steady.log")
    prober = probes.Prober(app.base_url)
    prober.start()
    phases: list[dict] = []
    try:
        t0 = time.time()
        time.sleep(baseline_s)
        phases.append({"fault": "none (baseline)", "start": t0, "end": time.time(), "recovery_s": 0.0})
        for fault in faults:
            start = time.time()
            back = inject(stack, fault, hold_s)
            rec = probes.wait_recovered(app.base_url, back, recovery_limit_s)
            print(f"[faults] {fault}: recovered in {rec} s after the component was back", flush=True)
            time.sleep(settle_s)
            phases.append({"fault": fault, "start": start, "end": time.time(), "recovery_s": rec,
                           "down_s": round(back - start, 1)})
        prober.stop()
        stop(load)
        overload = None
        if overload_s > 0:
            cap = capacity or AdmissionSettings().max_active
            o_rec = work / "overload.jsonl"
            burst = locust(app.base_url, o_rec, 5 * cap, OVERLOAD_MIX, overload_s, 0.0, work / "locust-overload.log")
            try:
                burst.wait(overload_s + 120)
            except subprocess.TimeoutExpired:
                stop(burst)
            base = [r for r in figures.in_window(figures.read_records(steady_rec), phases[0]["start"], phases[0]["end"])
                    if r["name"] in ("chat", "chat stream")]
            overload = figures.overload_figures(figures.read_records(o_rec), base)
            overload.update(users=5 * cap, capacity=cap, seconds=overload_s,
                            recovery_s=probes.wait_recovered(app.base_url, time.time(), recovery_limit_s))
        job_ids = [j["id"] for j in prober.job_posts if j.get("id")]
        at_end = probes.job_states(app.base_url, [i for i in job_ids if i not in prober.job_done], wait_s=300)
        states = {**at_end, **prober.job_done}
        results_lost = sorted(i for i, s in probes.job_states(app.base_url, list(prober.job_done), 0).items()
                              if s == "missing")  # finished, then its record vanished (e.g. Redis restart)
        time.sleep(10)  # the Router's audit publisher and the worker flush
        blocked = [c["id"] for c in prober.chats if c.get("blocked") and c.get("id")]
        audited = probes.audited_ids(stack.pg.dsn, blocked, stack.spool, app.env["CHATGATE_QUEUE__BROKER_URL"],
                                     AuditSettings().deadletter_key, audit_queue=QueueSettings().audit_queue)
        records = figures.read_records(steady_rec)
        out = []
        for ph in phases:
            f = {"fault": ph["fault"], "recovery_s": ph["recovery_s"], "down_s": ph.get("down_s"),
                 "t_start": round(ph["start"], 2)}
            f.update(figures.load_figures(figures.in_window(records, ph["start"], ph["end"])))
            f.update(figures.probe_figures(figures.in_window(prober.chats, ph["start"], ph["end"]),
                                           figures.in_window(prober.job_posts, ph["start"], ph["end"]), states, audited))
            out.append(f)
        lost = any(f["audit_events_lost"] for f in out)
        return {"faults": out, "overload": overload, "stack": stack,
                "audit_log": audit_log_lines(app, work) if lost else [],
                "job_results_lost": {"count": len(results_lost), "of_done": len(prober.job_done)}}
    except BaseException:
        prober.stop()
        stop(load)
        teardown(stack)
        raise


def audit_log_lines(app: LiveApp, work: Path, keep: int = 60) -> list[str]:
    """The audit trail's own log lines (Router replicas, Celery workers): read when an event was
    counted lost, so the report says where it went missing."""
    logs = sorted(work.glob("worker-*.log"))
    run_dir = app.env.get("CHATGATE_RUN_DIR")
    if run_dir:
        logs += sorted(Path(run_dir).glob("ray/session_*/logs/serve/replica_*Router*.log"))
    lines = []
    for path in logs:
        try:
            lines += [f"{path.name}: {ln}" for ln in path.read_text(errors="replace").splitlines()
                      if "audit" in ln.lower() or "spool" in ln.lower()]
        except OSError:
            continue
    return lines[-keep:]


def teardown(stack: Stack) -> None:
    import ray

    if ray.is_initialized():  # the driver kill_replica connected
        ray.shutdown()
    stack.worker.stop()
    stack.app.stop()
    stack.pg.destroy()


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="chatgate-faults-"))
