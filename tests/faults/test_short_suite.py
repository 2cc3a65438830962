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


def test_short_fault_suite_meets_issue_13_targets(tmp_path):
    skip_if_session_live_app()
    out = subprocess.run([sys.executable, "-m", "tools.faults", "--short", "--json", str(tmp_path / "faults.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=1700)
    (tmp_path / "faults.log").write_text(out.stdout + out.stderr)
    report = json.loads((tmp_path / "faults.json").read_text())
    assert [f["fault"] for f in report["faults"]] == ["none (baseline)", "input-moderation", "redis", "worker"]
    assert all(f["sent"] > 0 for f in report["faults"]), report["table"]
    assert report["overload"]["sent"] > 0 and report["fuzz"]["engine_unfinished_after"] is not None
    assert out.returncode == 0, report["table"] + "\n" + out.stdout[-2000:]  # 1 = a target was missed
