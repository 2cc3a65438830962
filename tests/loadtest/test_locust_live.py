"""A short locust run (~30 s) against the real system, with loose limits (CI: `pytest -m slow`).

The jobs user is excluded unless a Celery worker is running (the live app starts none):
set LOADTEST_CI_MIX to change the mix, e.g. "all" when a worker runs.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_short_locust_run_passes_loose_limits(live_app, tmp_path):
    mix = os.environ.get("LOADTEST_CI_MIX", "benign:3,stream:2,abusive:1,moderation:2")
    cmd = [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless", "-H", live_app.base_url,
           "-u", "4", "-r", "4", "-t", os.environ.get("LOADTEST_CI_DURATION", "30s"), "--stop-timeout", "60",
           "--mix", mix, "--max-tokens", "16", "--think-time", "0.5",
           "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "report.html"), "--only-summary",
           "--max-fail-ratio", "0.05", "--max-p95-ms", "30000", "--min-requests", "10"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    (tmp_path / "locust.log").write_text(out.stdout + out.stderr)
    failures = (tmp_path / "run_failures.csv").read_text() if (tmp_path / "run_failures.csv").exists() else ""
    limits = [ln for ln in out.stderr.splitlines() if "LOADTEST LIMITS" in ln]
    assert out.returncode == 0, f"{limits}\nfailures:\n{failures[:2000]}\nlog: {tmp_path / 'locust.log'}"
    assert "LOADTEST LIMITS OK" in out.stderr
    assert (tmp_path / "report.html").exists()
    rows = {(r["Type"], r["Name"]): r for r in csv.DictReader((tmp_path / "run_stats.csv").open())}
    names = {name for _, name in rows}
    assert {"chat", "chat abusive", "moderations", "chat stream", "chat stream first token"} <= names, names
    assert int(rows[("POST", "chat abusive")]["Failure Count"]) == 0  # every abusive prompt got the template
