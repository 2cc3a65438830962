"""Moderation replicas yield the CPU to the engine: every thread of the process, not only the
one that ran the constructor, ends at the configured niceness; a lower one is never asked for."""
from __future__ import annotations

import json
import subprocess
import sys

from services.config import ModerationSettings

_CHILD = """
import json, os, threading
from deployments.cpu_priority import lower_priority
stop = threading.Event()
workers = [threading.Thread(target=stop.wait, daemon=True) for _ in range(3)]
for w in workers: w.start()
try:
    changed = lower_priority(int(os.environ["NICE"]))
    later = []
    t = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, 0)))
    t.start(); t.join()
    nice = {}
    for w in workers:
        nice[w.native_id] = os.getpriority(os.PRIO_PROCESS, w.native_id)
    nice[threading.get_native_id()] = os.getpriority(os.PRIO_PROCESS, 0)
finally:
    stop.set()
print(json.dumps({"changed": changed, "nice": sorted(set(nice.values())), "threads": len(nice), "later": later}))
"""


def _run(nice: int, start_nice: int = 0) -> dict:
    cmd = [sys.executable, "-c", _CHILD]
    if start_nice:
        cmd = ["nice", "-n", str(start_nice), *cmd]
    out = subprocess.run(cmd, env={"NICE": str(nice), "PYTHONPATH": "."}, capture_output=True, text=True, check=True,
                         timeout=60)
    return json.loads(out.stdout)


def test_every_thread_and_later_ones_get_the_niceness():
    r = _run(7)
    assert r["threads"] >= 4 and r["changed"] >= 4
    assert r["nice"] == [7] and r["later"] == [7]


def test_zero_changes_nothing_and_a_higher_niceness_is_kept():
    assert _run(0)["nice"] == [0]
    r = _run(3, start_nice=12)  # already nicer than asked: left alone (lowering needs privileges)
    assert r["changed"] == 0 and r["nice"] == [12]


def test_the_setting_is_off_by_default_and_bounded():
    assert ModerationSettings().cpu_niceness == 0
    assert ModerationSettings(cpu_niceness=10).cpu_niceness == 10
    for bad in (-1, 20):
        try:
            ModerationSettings(cpu_niceness=bad)
        except ValueError:
            continue
        raise AssertionError(f"cpu_niceness={bad} was accepted")
