"""tools/runscope.py against real processes and real /dev/shm segments: it stops exactly the
processes of our run (marked ones, their descendants even with a clean environment, orphans it
recorded earlier, SIGTERM-proof ones) and removes only the shared memory they used."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import runscope  # noqa: E402

# Holds a SharedMemory segment (forgotten by the resource tracker, like a process that dies
# uncleanly), prints its name and pid, optionally ignores SIGTERM, optionally starts a child with an
# EMPTY environment (as setproctitle leaves /proc/PID/environ) that does the same, optionally exits
# at once leaving that child an orphan.
HOLDER = r"""
import os, signal, subprocess, sys, time
from multiprocessing import resource_tracker, shared_memory
shm = shared_memory.SharedMemory(create=True, size=4096)
resource_tracker.unregister(shm._name, "shared_memory")
print(shm.name, os.getpid(), flush=True)
if "stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "child" in sys.argv or "orphan" in sys.argv:
    subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[1], "stubborn"], stdout=sys.stdout, env={})
if "orphan" in sys.argv:
    time.sleep(1)
    os._exit(0)
time.sleep(300)
"""


def _holder(run_id: str, *flags: str) -> tuple[subprocess.Popen, list[tuple[str, int]]]:
    env = {**os.environ, "CHATGATE_RUN_ID": run_id}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, HOLDER, *flags], env=env, stdout=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline().split() for _ in range(2 if {"child", "orphan"} & set(flags) else 1)]
    return proc, [(f"/dev/shm/{name.lstrip('/')}", int(pid)) for name, pid in lines]


def _alive(pid: int) -> bool:
    st = runscope._stat(pid)
    return st is not None and st[2] != "Z"


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="Linux /dev/shm")
def test_stops_only_our_processes_and_removes_only_our_shared_memory(tmp_path):
    ours, theirs = f"test-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    run_dir, other_dir = tmp_path / "ours", tmp_path / "ours-other"  # a prefix of the other's dir
    run_dir.mkdir()
    other_dir.mkdir()
    a, a_held = _holder(ours, "child")  # parent + a child whose environment is empty
    o, o_held = _holder(ours, "orphan")  # its child outlives it, re-parented to init
    other, other_held = _holder(theirs)
    held = a_held + o_held
    try:
        runscope.record(ours, run_dir)  # while the orphan's parent still lives: its pid is noted
        o.wait(10)
        procs = runscope.scope(ours, run_dir)
        assert {pid for _, pid in held} - {o.pid} <= set(procs), "a clean-environment child or the orphan was missed"
        assert not {pid for _, pid in other_held} & set(procs)
        assert not set(procs) & set(runscope.scope(theirs, other_dir))
        t0 = time.monotonic()
        result = runscope.stop(ours, run_dir, grace_s=1.0)
        assert result["left"] == 0 and result["shm_removed"] == 4 and time.monotonic() - t0 < 10
        assert not any(_alive(pid) for _, pid in held)  # SIGTERM-proof children were killed too
        assert not any(Path(f).exists() for f, _ in held)
        assert _alive(other.pid) and Path(other_held[0][0]).exists()  # another run's: untouched
    finally:
        for p in (a, o, other):
            p.kill()
            p.wait(5)
        for f, pid in held + other_held:
            if _alive(pid):
                os.kill(pid, 9)
            Path(f).unlink(missing_ok=True)
