"""The fault suite's short form against the real system (CI, `-m slow`): InputModeration replica,
Redis and the Celery worker killed under load, a 20 s overload at 5x capacity, a short fuzz run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.guard import skip_if_session_live_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]


def test_short_fault_suite_holds_issue_13_guarantees(tmp_path):
    skip_if_session_live_app()
    out = subprocess.run([sys.executable, "-m", "tools.faults", "--short", "--json", str(tmp_path / "faults.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=1700)
    (tmp_path / "faults.log").write_text(out.stdout + out.stderr)
    report = json.loads((tmp_path / "faults.json").read_text())
    assert [f["fault"] for f in report["faults"]] == ["none (baseline)", "input-moderation", "redis", "worker"]
    assert all(f["sent"] > 0 for f in report["faults"]), report["table"]
    assert report["overload"]["sent"] > 0 and report["fuzz"]["engine_unfinished_after"] is not None
    # Hard guarantees: they hold on any machine, however loaded. The latency targets (rejection
    # time, accepted p99, recovery) depend on how busy the 2 cores are: the suite prints them with
    # PASS/MISS (exit 1 on a miss) and docs/faults.md / the README say which are missed and why.
    print(report["table"])
    for f in report["faults"]:
        assert f["unexpected_5xx"] == 0 and f["unchecked_text_delivered"] == 0, (f["fault"], f["failure_samples"])
        assert f["audit_events_lost"] == 0, (f["fault"], f["t_start"], f["audit_lost"], report.get("audit_log"))
        assert f["rejected_without_retry_after"] == 0, f
        # jobs whose message was lost are re-published by the reconciler (services/jobs/reconcile.py)
        assert f["jobs_lost"] == 0, (f["fault"], f["jobs_lost_states"])
    over = report["overload"]
    assert over["rejected_429_503"] > 0 and over["rejected_without_retry_after"] == 0 and over["unexpected_5xx"] == 0, over
    assert report["fuzz"]["server_errors"] == 0 and report["fuzz"]["engine_unfinished_after"] == 0, report["fuzz"]
