"""tools/runscope.py against real processes and real /dev/shm segments: it stops exactly the
processes carrying our run id (children included, SIGTERM-proof ones too) and removes only the
shared memory they used, never another run's."""
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

# Holds a SharedMemory segment open (and forgets it on exit, like a process that dies uncleanly),
# optionally ignores SIGTERM, optionally starts a child that does the same.
HOLDER = r"""
import os, signal, subprocess, sys, time
from multiprocessing import resource_tracker, shared_memory
shm = shared_memory.SharedMemory(create=True, size=4096)
resource_tracker.unregister(shm._name, "shared_memory")  # no tracker clean-up: a leak if not removed
print(shm.name, flush=True)
if "stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "child" in sys.argv:
    subprocess.Popen([sys.executable, "-c", sys.argv[1], "stubborn"], stdout=sys.stdout)
time.sleep(300)
"""


def _holder(run_id: str, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "CHATGATE_RUN_ID": run_id}
    return subprocess.Popen([sys.executable, "-c", HOLDER, HOLDER, *flags], env=env, stdout=subprocess.PIPE, text=True)


def _alive(pid: int) -> bool:
    try:
        return b"zombie" not in Path(f"/proc/{pid}/status").read_bytes().lower()
    except FileNotFoundError:
        return False


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="Linux /dev/shm")
def test_stops_only_our_processes_and_removes_only_our_shared_memory(tmp_path):
    ours, theirs = f"test-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    a = _holder(ours, "child")
    a_shm, child_shm = a.stdout.readline().strip(), a.stdout.readline().strip()
    other = _holder(theirs)
    other_shm = other.stdout.readline().strip()
    try:
        pids = runscope.run_pids(ours, set())
        # a, its child, and their multiprocessing resource trackers; nothing of the other run
        assert a.pid in pids and len(pids) >= 2 and other.pid not in pids
        assert not set(pids) & set(runscope.run_pids(theirs, set()))
        listing = tmp_path / "shm.list"
        runscope.record(ours, listing)
        assert set(listing.read_text().split()) == {f"/dev/shm/{a_shm.lstrip('/')}", f"/dev/shm/{child_shm.lstrip('/')}"}
        t0 = time.monotonic()
        result = runscope.stop(ours, listing, grace_s=1.0, exclude=set())
        assert result["left"] == 0 and result["shm_removed"] == 2 and time.monotonic() - t0 < 10
        assert not any(_alive(p) for p in pids)  # the SIGTERM-proof child was killed too
        assert not Path(f"/dev/shm/{a_shm.lstrip('/')}").exists()
        assert not Path(f"/dev/shm/{child_shm.lstrip('/')}").exists()
        assert _alive(other.pid) and Path(f"/dev/shm/{other_shm.lstrip('/')}").exists()  # not ours: untouched
    finally:
        for p in (a, other):
            p.kill()
            p.wait(5)
        for name in (a_shm, child_shm, other_shm):
            Path(f"/dev/shm/{name.lstrip('/')}").unlink(missing_ok=True)
