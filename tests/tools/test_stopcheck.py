"""The whole system stops cleanly and only itself (tools/stopcheck.py: real Ray + Serve + vLLM)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_run_sh_stops_within_30s_leaving_nothing_and_touching_no_other_instance():
    proc = subprocess.run([sys.executable, "-m", "tools.stopcheck"], cwd=ROOT, capture_output=True, text=True,
                          timeout=880)
    print(proc.stdout)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("PASS"), proc.stdout + proc.stderr[-3000:]
