"""Measure how `tools/run.sh` stops: time, leftovers, and that another instance is left alone.

    flock /tmp/chatgate-live.lock python -m tools.stopcheck

Starts the whole system through tools/launch.py (own Redis, free ports, one Celery worker), sends
one chat request so vLLM has worked (if /readyz answers within 420 s; else it stops with vLLM's
engine up, as a Ctrl-C during start-up would, and says so), plants decoys that belong to "another instance" (a process
titled VLLM::EngineCore whose parent is init, an unmapped /dev/shm/psm_* file, a Ray-like temp
dir), then stops it and prints: seconds to stop, this run's processes and /dev/shm files before
and after, and whether the decoys survived. Exit 1 if anything of ours is left or a decoy is gone.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tools import runscope
from tools.launch import free_port, start_live_app

DECOY_TITLE = "VLLM::EngineCore"


def _decoys() -> tuple[subprocess.Popen, Path, Path]:
    # An orphan-looking EngineCore of another instance (run.sh used to kill these by name).
    proc = subprocess.Popen(["bash", "-c", f"exec -a {DECOY_TITLE} sleep 600"], start_new_session=True,
                            env={k: v for k, v in os.environ.items() if k != "CHATGATE_RUN_ID"})
    shm = Path("/dev/shm") / f"psm_decoy{os.getpid()}"
    shm.write_bytes(b"\0" * 4096)  # unmapped and newer than our start: run.sh used to delete these
    tmp = Path(tempfile.mkdtemp(prefix="ray-decoy-"))
    return proc, shm, tmp


READY_S = 420


def _wait_ready(app, run_id: str, run_dir: Path, t_start: float) -> float | None:
    """Seconds until /readyz answered 200; None if it did not within READY_S (then at least vLLM's
    EngineCore must have been up for 20 s, so the stop still has an engine to shut down)."""
    engine_since = None
    while time.monotonic() - t_start < READY_S and app.proc.poll() is None:
        try:
            if httpx.get(f"{app.base_url}/readyz", timeout=5).status_code == 200:
                return time.monotonic() - t_start
        except httpx.HTTPError:
            pass
        titles = {runscope._read(f"/proc/{p}/comm").decode().strip() for p in runscope.scope(run_id, run_dir)}
        if engine_since is None and any(t.startswith("VLLM::EngineCor") for t in titles):
            engine_since = time.monotonic()
        time.sleep(2)
    if app.proc.poll() is not None:
        raise RuntimeError(f"run.sh exited during start-up: {app.log_path.read_text()[-3000:]}")
    while engine_since is None or time.monotonic() - engine_since < 20:
        titles = {runscope._read(f"/proc/{p}/comm").decode().strip() for p in runscope.scope(run_id, run_dir)}
        if engine_since is None and any(t.startswith("VLLM::EngineCor") for t in titles):
            engine_since = time.monotonic()
        if time.monotonic() - t_start > READY_S + 300:
            raise RuntimeError("vLLM's EngineCore never started")
        time.sleep(2)
    return None


def main() -> int:
    t_start = time.monotonic()
    app = start_live_app(extra_env={"CHATGATE_WORKERS": "1", "CHATGATE_WORKER_METRICS_PORT": str(free_port())},
                         wait_ready=False)
    run_id, run_dir = app.env["CHATGATE_RUN_ID"], Path(app.env["CHATGATE_RUN_DIR"])
    decoy, decoy_shm, decoy_dir = _decoys()
    try:
        ready_s = _wait_ready(app, run_id, run_dir, t_start)
        status = "-"
        if ready_s is not None:
            status = str(httpx.post(f"{app.base_url}/v1/chat/completions", timeout=120, json={
                "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}).status_code)
        procs = runscope.scope(run_id, run_dir)
        pids = set(procs)
        ours_shm = set().union(*(runscope.shm_files(p) for p in pids))
        titles = sorted({runscope._read(f"/proc/{p}/comm").decode().strip() for p in pids} - {""})
        t0 = time.monotonic()
        app.stop()
        stop_s = time.monotonic() - t0
        now = runscope._all()  # the same processes (pid and start time) still alive?
        left = [p for p, start in procs.items() if p in now and now[p][1] == start and now[p][2] != "Z"]
        shm_left = sorted(f for f in ours_shm if Path(f).exists())
        decoys_ok = decoy.poll() is None and decoy_shm.exists() and decoy_dir.exists()
        rows = [
            ("ready after (s)", f"{ready_s:.0f}" if ready_s is not None else
             f"not within {READY_S} s (stopped with the engine up, as a Ctrl-C during start-up would)"),
            ("chat request", status),
            ("this run's processes before stop", f"{len(pids)} ({', '.join(titles)})"[:200]),
            ("this run's /dev/shm files before stop", str(len(ours_shm))),
            ("time to stop (s)", f"{stop_s:.1f}"),
            ("this run's processes after stop", str(len(left))),
            ("this run's /dev/shm files after stop", str(len(shm_left))),
            ("run dir (Ray temp dir) removed", str(not run_dir.exists())),
            ("other instance's process, shm file, temp dir untouched", str(decoys_ok)),
        ]
        for k, v in rows:
            print(f"{k:<56} {v}")
        ok = not left and not shm_left and decoys_ok and not run_dir.exists() and stop_s < 30
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if app.proc.poll() is None:
            app.stop()
        decoy.kill()
        decoy_shm.unlink(missing_ok=True)
        decoy_dir.rmdir()


if __name__ == "__main__":
    sys.exit(main())
