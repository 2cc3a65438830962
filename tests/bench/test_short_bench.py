"""The short benchmark against the real systems (CI, `-m slow`, ~5 min): bare vLLM and chatgate in
turn, and the chatgate / bare ratios held against tools/bench/baseline-short.json."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.guard import skip_if_session_live_app
from tools.bench import gate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]
ROOT = Path(__file__).resolve().parents[2]
STOLEN_LIMIT = 0.1  # cores (of the 2) the hypervisor may take during a level before a run cannot judge


def _short_run(tmp_path, name: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = subprocess.run([sys.executable, "-m", "tools.bench", "--short", "--json", str(tmp_path / f"{name}.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=1400)
    (tmp_path / f"{name}.log").write_text(out.stdout + out.stderr)
    report = json.loads((tmp_path / f"{name}.json").read_text())
    rows = report["vllm"]["results"] + report["chatgate"]["results"]
    assert len(rows) == 3 * 2 + 3 * 2 and all(r["errors"] == 0 for r in rows), out.stdout[-3000:]
    assert "| issue 14 target |" in out.stdout
    return out, report


def test_short_benchmark_holds_the_baseline_ratios(tmp_path):
    """A regression must show in two runs: the short run's ratios swing with the machine's load
    (other jobs on the 2 cores), and one busy run is not a regression. Only a ratio that is worse
    than its band in the first run AND in a confirming rerun fails the test."""
    skip_if_session_live_app()
    first, report = _short_run(tmp_path, "short")
    if first.returncode == 0:
        return
    assert first.returncode == 1, first.stdout[-4000:]  # 1 = a ratio regressed; anything else broke
    suspects = {p.split(":")[0] for p in gate.regressions(report, gate.load_baseline())}
    second, again = _short_run(tmp_path, "confirm")
    confirmed = sorted(suspects & {p.split(":")[0] for p in gate.regressions(again, gate.load_baseline())})
    stolen = max(_stolen(report), _stolen(again))
    if confirmed and stolen > STOLEN_LIMIT:
        # Not a verdict on the code: the hypervisor took CPU from this VM during the runs, which
        # slows chatgate's many processes more than bare vLLM's few (seen: 16-22 % steal).
        pytest.skip(f"regressed in two runs ({confirmed}), but the hypervisor took up to {stolen} cores "
                    f"during a level (limit {STOLEN_LIMIT}): this machine cannot measure the ratios now")
    assert not confirmed, f"regressed in two runs: {confirmed}\n" + second.stdout[-4000:]


def _stolen(report: dict) -> float:
    """The most CPU (cores) the hypervisor took during any level of a run."""
    rows = report["vllm"]["results"] + report["chatgate"]["results"]
    return max((r.get("cpu", {}).get("machine steal", 0.0) for r in rows), default=0.0)
