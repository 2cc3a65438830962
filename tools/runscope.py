"""Find and stop exactly the processes of one `tools/run.sh` run, and the shared memory they used.

run.sh exports CHATGATE_RUN_ID; every process it starts inherits it (the Ray daemons of its own
`ray start`, Ray's workers and replicas, vLLM's EngineCore, HAProxy, the Celery workers), so the
process environment is the scope: no name matching, no other instance's processes or files.
Linux only (/proc). Stdlib only: it runs before and after the venv's packages matter.

    python tools/runscope.py record RUN_ID FILE     # append /dev/shm files our processes map or hold open
    python tools/runscope.py stop RUN_ID FILE [--grace S] [--exclude PID ...]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

SHM = "/dev/shm/"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:  # gone, or not ours to read
        return b""


def run_pids(run_id: str, exclude: set[int]) -> list[int]:
    marker = f"CHATGATE_RUN_ID={run_id}".encode()
    me = {os.getpid(), os.getppid(), *exclude}
    return [int(d) for d in os.listdir("/proc")
            if d.isdigit() and int(d) not in me and marker in _read(f"/proc/{d}/environ").split(b"\0")]


def shm_files(pid: int) -> set[str]:
    """/dev/shm files a process maps (SharedMemory, semaphores) or holds open."""
    found = set()
    for line in _read(f"/proc/{pid}/maps").decode(errors="replace").splitlines():
        path = line.split(None, 5)[5] if len(line.split(None, 5)) == 6 else ""
        if path.startswith(SHM):
            found.add(path.removesuffix(" (deleted)"))
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(SHM):
                found.add(target.removesuffix(" (deleted)"))
    except OSError:
        pass
    return found


def record(run_id: str, out: Path, exclude: set[int] = frozenset()) -> set[str]:
    files = set().union(*(shm_files(p) for p in run_pids(run_id, set(exclude)))) if run_id else set()
    known = set(out.read_text().split()) if out.exists() else set()
    with out.open("a") as fh:
        for f in sorted(files - known):
            fh.write(f + "\n")
    return files | known


def in_use(paths: set[str]) -> set[str]:
    used: set[str] = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            used |= shm_files(int(d)) & paths
    return used


def stop(run_id: str, out: Path, grace_s: float, exclude: set[int]) -> dict[str, float]:
    t0 = time.monotonic()
    files = record(run_id, out, exclude)
    pids = run_pids(run_id, exclude)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = [p for p in pids if os.path.exists(f"/proc/{p}") and b"zombie" not in _read(f"/proc/{p}/status").lower()]
        if not pids:
            break
    removed = 0
    for f in sorted(files - in_use(files)):  # a file another process still maps is not ours to take
        try:
            os.unlink(f)
            removed += 1
        except FileNotFoundError:
            pass
    return {"seconds": round(time.monotonic() - t0, 1), "left": len(pids), "shm_removed": removed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["record", "stop", "pids"])
    p.add_argument("run_id")
    p.add_argument("file", type=Path, nargs="?")
    p.add_argument("--grace", type=float, default=5.0)
    p.add_argument("--exclude", type=int, nargs="*", default=[])
    a = p.parse_args(argv)
    if a.command == "pids":
        print(" ".join(map(str, run_pids(a.run_id, set(a.exclude)))))
    elif a.command == "record":
        record(a.run_id, a.file, set(a.exclude))
    else:
        r = stop(a.run_id, a.file, a.grace, set(a.exclude))
        print(f"==> stopped this run's processes in {r['seconds']} s ({r['left']} left), "
              f"removed {r['shm_removed']} /dev/shm files", file=sys.stderr)
        return 1 if r["left"] else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
