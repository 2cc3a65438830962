"""The regression gate of the short benchmark: this run's ratios against a committed baseline, each
allowed to be worse by its noise band before the run fails.

The band comes from measured run-to-run spread (`calibrate`): several short runs of the same
commit on the same machine; baseline = their median, band = max(floor, 1.5 x (max - min)). The
factor covers a spread seen in a handful of runs underestimating the true one; the floors keep a
metric that happened to agree across the calibration runs from failing on the next jitter.

    python -m tools.bench.gate calibrate RUN.json RUN.json ... [--out tools/bench/baseline-short.json]
    python -m tools.bench.gate check RUN.json [--baseline tools/bench/baseline-short.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from tools.bench.targets import gate_metrics

BASELINE = Path(__file__).resolve().parent / "baseline-short.json"
# Floors wide enough for a different or busier machine than the one calibrated on: bare vLLM and
# chatgate run minutes apart on a shared box whose speed drifts (bare c=1 went 15.0 -> 20.4 tok/s
# between two runs of the same code on 2026-12-02), so the gate catches gross regressions (about a
# third) only; a test confirms a regression with a second run (tests/bench/test_short_bench.py).
FLOOR = {"ratio": 0.3, "ms": 150.0}
SPREAD_FACTOR = 1.5
# Levels above 1 share the 2 cores between 8 streams and swing more between runs: wider floors.
BUSY_LEVEL_FACTOR = 2


def load_baseline(path: Path = BASELINE) -> dict:
    return json.loads(path.read_text())


def calibrate(reports: list[dict]) -> dict[str, Any]:
    runs = [gate_metrics(r) for r in reports]
    names = sorted(set.intersection(*(set(m) for m in runs))) if runs else []
    metrics = {}
    for name in names:
        values = [m[name]["value"] for m in runs]
        unit, better = runs[0][name]["unit"], runs[0][name]["better"]
        spread = max(values) - min(values)
        floor = FLOOR[unit] * (1 if name.endswith(" c=1") else BUSY_LEVEL_FACTOR)
        metrics[name] = {"value": round(statistics.median(values), 4), "band": round(max(floor, SPREAD_FACTOR * spread), 4),
                         "better": better, "unit": unit, "runs": [round(v, 4) for v in values]}
    return {"rule": f"baseline = median of the runs; band = max(floor {FLOOR} (x{BUSY_LEVEL_FACTOR} above c=1), "
                    f"{SPREAD_FACTOR} x (max - min))",
            "commands": [r.get("command") for r in reports], "metrics": metrics}


def regressions(report: dict, baseline: dict) -> list[str]:
    """The metrics worse than baseline by more than their band (empty: the run passes)."""
    now = gate_metrics(report)
    problems = []
    for name, b in baseline["metrics"].items():
        if name not in now:
            problems.append(f"{name}: not measured in this run")
            continue
        v = now[name]["value"]
        worse = (b["value"] - v) if b["better"] == "higher" else (v - b["value"])
        if worse > b["band"]:
            problems.append(f"{name}: {v:.3f} vs baseline {b['value']:.3f} (worse by {worse:.3f} > band {b['band']:.3f})")
    return problems


def render_check(report: dict, baseline: dict) -> str:
    now = gate_metrics(report)
    lines = ["| guarded ratio | this run | baseline | band | verdict |", "|---|---:|---:|---:|---|"]
    bad = {p.split(":")[0] for p in regressions(report, baseline)}
    for name, b in baseline["metrics"].items():
        v = now.get(name, {}).get("value")
        lines.append(f"| {name} | {'-' if v is None else f'{v:.3f}'} | {b['value']:.3f} | ±{b['band']:.3f} "
                     f"| {'REGRESSED' if name in bad else 'ok'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("runs", nargs="+", type=Path)
    c.add_argument("--out", type=Path, default=BASELINE)
    k = sub.add_parser("check")
    k.add_argument("run", type=Path)
    k.add_argument("--baseline", type=Path, default=BASELINE)
    args = ap.parse_args(argv)
    if args.cmd == "calibrate":
        base = calibrate([json.loads(p.read_text()) for p in args.runs])
        args.out.write_text(json.dumps(base, indent=2) + "\n")
        for name, m in base["metrics"].items():
            print(f"{name:<42} median {m['value']:8.3f}  band ±{m['band']:.3f}  runs {m['runs']}")
        return 0
    report, baseline = json.loads(args.run.read_text()), load_baseline(args.baseline)
    print(render_check(report, baseline))
    problems = regressions(report, baseline)
    print("\n".join(["REGRESSION: " + p for p in problems]) or "no regression beyond the noise band")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
