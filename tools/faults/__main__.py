"""The fault suite: chatgate under a steady locust load while its parts are killed in turn, then
overload at 5x capacity, then a schema-based fuzz run of the OpenAPI spec (docs/faults.md).

    python -m tools.faults                       # every fault, overload 60 s, fuzz 25 examples/operation
    python -m tools.faults --short               # CI: input-moderation, redis, worker; overload 20 s; fuzz 5
    python -m tools.faults --faults generator,postgres --overload-s 0 --no-fuzz

Faults: input-moderation, output-moderation, generator, router (Ray actor kill of the replica; Serve
replaces it), router-checks (SIGKILL of the Router's scanner processes), redis, postgres, worker
(killed, held down --hold-s seconds, started again). Per fault it prints requests sent / answered /
rejected (429, 503) / unexpected 5xx, jobs lost, audit events lost, unchecked text delivered and the
recovery time (from the component being back until /readyz and a chat answer work), with issue 13's
targets as PASS / MISS. Exit 1 on any MISS.
Run it under `flock /tmp/chatgate-live.lock` like every command that starts the live system.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tools.faults import figures, fuzz, suite  # noqa: E402


def parse(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="CI form: faults " + ",".join(suite.SHORT))
    ap.add_argument("--faults", default=None, help="comma-separated, from " + ",".join(suite.ALL))
    ap.add_argument("--baseline-s", type=float, default=20, help="steady load before the first fault")
    ap.add_argument("--hold-s", type=float, default=10, help="how long redis/postgres/worker stay down")
    ap.add_argument("--settle-s", type=float, default=5, help="load kept on after each recovery")
    ap.add_argument("--recovery-limit-s", type=float, default=240)
    ap.add_argument("--overload-s", type=int, default=None, help="0 skips the overload phase (default 60; short 20)")
    ap.add_argument("--capacity", type=int, default=None, help="default: api.admission.max_active")
    ap.add_argument("--no-fuzz", action="store_true")
    ap.add_argument("--fuzz-examples", type=int, default=None, help="per operation (default 25; short 5)")
    ap.add_argument("--json", type=Path, default=ROOT / "tools" / "faults" / "results" / "latest.json")
    args = ap.parse_args(argv)
    args.faults = [f.strip() for f in (args.faults or ",".join(suite.SHORT if args.short else suite.ALL)).split(",") if f.strip()]
    unknown = [f for f in args.faults if f not in suite.ALL]
    if unknown:
        ap.error(f"unknown fault(s) {unknown}")
    args.overload_s = args.overload_s if args.overload_s is not None else (20 if args.short else 60)
    args.fuzz_examples = args.fuzz_examples or (5 if args.short else 25)
    return args


def verdicts(report: dict) -> list[str]:
    miss = [f"{f['fault']}: {k}" for f in report["faults"] for k, v in figures.fault_targets(f).items() if v == "MISS"]
    if report.get("overload"):
        miss += [f"overload: {k}" for k, v in figures.overload_targets(report["overload"]).items() if v == "MISS"]
    if report.get("fuzz"):
        miss += [f"fuzz: {k}" for k, v in fuzz.targets(report["fuzz"]).items() if v == "MISS"]
    return miss


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    work = suite.workdir()
    t0 = time.monotonic()
    print(f"[faults] work dir {work}; faults {args.faults}", flush=True)
    result = suite.run(args.faults, work, args.baseline_s, args.hold_s, args.settle_s, args.recovery_limit_s,
                       args.overload_s, args.capacity)
    stack = result.pop("stack")
    try:
        if not args.no_fuzz:
            print("[faults] fuzzing the OpenAPI spec", flush=True)
            result["fuzz"] = fuzz.run(stack.app.base_url, work, args.fuzz_examples)
    finally:
        suite.teardown(stack)
    result.update(command="python -m tools.faults " + " ".join(sys.argv[1:] if argv is None else argv),
                  total_s=round(time.monotonic() - t0, 1), work_dir=str(work))
    table = figures.render(result["faults"], result.get("overload"))
    lost = result.get("job_results_lost") or {}
    table += (f"\n\nJob results lost after the job finished: {lost.get('count')} of {lost.get('of_done')} finished jobs "
              "(record gone at the end of the run, e.g. wiped by the Redis restart)")
    if result.get("fuzz"):
        table += "\n\n" + fuzz.render(result["fuzz"])
    result["table"] = table
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print("\n" + table)
    for f in result["faults"]:
        if f["failure_samples"]:
            print(f"  {f['fault']} failures: " + " | ".join(f["failure_samples"]))
    miss = verdicts(result)
    print("\n" + ("\n".join("MISS " + m for m in miss) if miss else "every target met") + f"\n(JSON: {args.json})")
    return 1 if miss else 0


if __name__ == "__main__":
    raise SystemExit(main())
