"""The short benchmark against the real systems (CI, `-m slow`, ~5 min): bare vLLM and chatgate in
turn, and the chatgate / bare ratios held against tools/bench/baseline-short.json."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.guard import skip_if_session_live_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
ROOT = Path(__file__).resolve().parents[2]


def test_short_benchmark_holds_the_baseline_ratios(tmp_path):
    skip_if_session_live_app()
    out = subprocess.run([sys.executable, "-m", "tools.bench", "--short", "--json", str(tmp_path / "short.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=1400)
    (tmp_path / "bench.log").write_text(out.stdout + out.stderr)
    report = json.loads((tmp_path / "short.json").read_text())
    rows = report["vllm"]["results"] + report["chatgate"]["results"]
    assert len(rows) == 2 * 2 + 3 * 2 and all(r["errors"] == 0 for r in rows), out.stdout[-3000:]
    assert "| issue 14 target |" in out.stdout
    assert out.returncode == 0, out.stdout[-4000:]  # 1 = a ratio regressed beyond its noise band
