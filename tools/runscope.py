"""Find and stop exactly the processes of one `tools/run.sh` run, and the shared memory they used.

A process belongs to the run when it carries the run's marker or descends from one that does:
- CHATGATE_RUN_ID=<id> in its initial environment (what run.sh and its children inherit), or
- the run's own directory (RUN_DIR: Ray's --temp-dir) on its command line (Ray's raylet, GCS,
  dashboard), or it is one of the given roots (run.sh itself);
- plus every descendant (Ray's workers and replicas, vLLM's EngineCore, HAProxy, Celery). Titles
  set with setproctitle (ray::…, VLLM::EngineCore, celeryd: …) overwrite a process's environment
  and command line in /proc, so descent, not names, is what keeps those in scope;
- plus pids recorded earlier (`record`, every few seconds while the run lives) that still have the
  same start time: a child whose parent died was re-parented to init and is found this way.
No name matching, no other instance's processes or files. Linux only (/proc), stdlib only.

    python tools/runscope.py record RUN_ID RUN_DIR [--root PID]   # note our pids and /dev/shm files
    python tools/runscope.py stop RUN_ID RUN_DIR [--root PID] [--grace S] [--exclude PID ...]
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


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, start time, state) from /proc/PID/stat."""
    raw = _read(f"/proc/{pid}/stat").decode(errors="replace")
    if not raw:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[19]), fields[0]


def _all() -> dict[int, tuple[int, int, str]]:
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and (st := _stat(int(d))) is not None:
            out[int(d)] = st
    return out


def scope(run_id: str, run_dir: Path, roots: set[int] = frozenset(), exclude: set[int] = frozenset()) -> dict[int, int]:
    """{pid: start time} of every live process of the run."""
    procs = _all()
    env_marker = f"CHATGATE_RUN_ID={run_id}".encode()
    dir_marker = (str(run_dir).rstrip("/") + "/").encode()  # /tmp/cg-ab must not match /tmp/cg-abc
    marked = {p for p in procs if p in roots
              or env_marker in _read(f"/proc/{p}/environ").split(b"\0")
              or dir_marker in _read(f"/proc/{p}/cmdline")}
    recorded = run_dir / "pids.list"
    for line in _read(str(recorded)).decode().split():
        pid, start = (int(x) for x in line.split(":"))
        if procs.get(pid, (0, -1))[1] == start:
            marked.add(pid)
    children: dict[int, list[int]] = {}
    for p, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(p)
    found, todo = set(), list(marked)
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo.extend(children.get(p, ()))
    found -= {os.getpid(), *exclude}
    return {p: procs[p][1] for p in found if p in procs and procs[p][2] != "Z"}


def shm_files(pid: int) -> set[str]:
    """/dev/shm files a process maps (SharedMemory, semaphores) or holds open."""
    found = set()
    for line in _read(f"/proc/{pid}/maps").decode(errors="replace").splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith(SHM):
            found.add(parts[5].removesuffix(" (deleted)"))
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        fds = []
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(SHM):
            found.add(target.removesuffix(" (deleted)"))
    return found


def _append(path: Path, items: set[str]) -> set[str]:
    known = set(_read(str(path)).decode().split())
    with path.open("a") as fh:
        for item in sorted(items - known):
            fh.write(item + "\n")
    return items | known


def record(run_id: str, run_dir: Path, roots: set[int] = frozenset(), exclude: set[int] = frozenset()) -> tuple[dict[int, int], set[str]]:
    procs = scope(run_id, run_dir, roots, exclude)
    _append(run_dir / "pids.list", {f"{p}:{s}" for p, s in procs.items()})
    files = _append(run_dir / "shm.list", set().union(*(shm_files(p) for p in procs)) if procs else set())
    return procs, files


def in_use(paths: set[str]) -> set[str]:
    used: set[str] = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            used |= shm_files(int(d)) & paths
    return used


def stop(run_id: str, run_dir: Path, grace_s: float, roots: set[int] = frozenset(),
         exclude: set[int] = frozenset()) -> dict[str, float]:
    t0 = time.monotonic()
    procs, files = record(run_id, run_dir, roots, exclude)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for p in procs:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while procs and time.monotonic() < deadline:
            time.sleep(0.2)
            now = _all()
            procs = {p: s for p, s in procs.items() if p in now and now[p][1] == s and now[p][2] != "Z"}
        if not procs:
            break
    removed = 0
    for f in sorted(files - in_use(files)):  # a file another process still maps is not ours to take
        try:
            os.unlink(f)
            removed += 1
        except FileNotFoundError:
            pass
    return {"seconds": round(time.monotonic() - t0, 1), "left": len(procs), "shm_removed": removed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["record", "stop", "pids"])
    p.add_argument("run_id")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--root", type=int, action="append", default=[])
    p.add_argument("--grace", type=float, default=5.0)
    p.add_argument("--exclude", type=int, nargs="*", default=[])
    a = p.parse_args(argv)
    roots, exclude = set(a.root), set(a.exclude)
    if a.command == "pids":
        print(" ".join(map(str, sorted(scope(a.run_id, a.run_dir, roots, exclude)))))
    elif a.command == "record":
        record(a.run_id, a.run_dir, roots, exclude)
    else:
        r = stop(a.run_id, a.run_dir, a.grace, roots, exclude)
        print(f"==> stopped this run's processes in {r['seconds']} s ({r['left']} left), "
              f"removed {r['shm_removed']} /dev/shm files", file=sys.stderr)
        return 1 if r["left"] else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
