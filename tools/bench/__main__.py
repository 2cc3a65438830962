"""chatgate vs bare vLLM, side by side on the same engine, model, prompts and machine, in one run.

    python -m tools.bench [--levels 1,8,32] [--requests 16] [--max-tokens 64] [--targets vllm,chatgate]
                          [--modes nonstream,stream,stream-buffered] [--json tools/bench/results/latest.json]
    python -m tools.bench --short        # CI form: c=1,8, 8 requests, 32 tokens; fails on a regression

1. the moderation classifier micro-benchmark (`python -m tools.moderation.bench`, short; not in --short);
2. bare vLLM's OpenAI server with chatgate's Generator settings from deployments.yaml (systems.py);
3. chatgate (tools/run.sh through tools/launch.py: own Redis, free ports, no Celery worker).
Never both at once. Each is driven with the same prompts (temperature 0, fixed seed) at each
concurrency level, every request a prompt not sent before in the run (loadtest/prompts_distinct.txt), non-streaming and streaming (chatgate streaming in both moderation modes, async
and buffered, each compared with bare streaming); requests per level = max(--requests, level).
Prints per-row TTFT / first-32-characters / inter-token / e2e distributions (p50/p90/p99), the
chatgate / bare ratios, issue 14's targets with PASS/MISS, launch->ready time and peak memory.
--short then checks the ratios against tools/bench/baseline-short.json (gate.py) and exits 1 on a
regression beyond the noise band.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from loadtest.common import load_prompts  # noqa: E402
from tools.bench import gate  # noqa: E402
from tools.bench.load import MODES  # noqa: E402
from tools.bench.prompts import needed  # noqa: E402
from tools.bench.report import render  # noqa: E402
from tools.bench.sampler import machine_info  # noqa: E402
from tools.bench.systems import bench_chatgate, bench_vllm  # noqa: E402

SHORT = {"levels": "1,8", "requests": 8, "max_tokens": 32}


def parse(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help=f"CI form {SHORT}, no micro-benchmark, regression gate")
    ap.add_argument("--levels", default=None, help="concurrency levels (default 1,8,32)")
    ap.add_argument("--requests", type=int, default=None, help="requests per level (at least the level; default 16)")
    ap.add_argument("--max-tokens", type=int, default=None, help="default 64")
    ap.add_argument("--prompts", default="prompts_distinct.txt",
                    help="prompt file (loadtest/ relative); each (mode, level) and warm-up gets prompts of its own "
                         "(tools/bench/prompts.py); prompts_benign.txt (17) repeats them: cache hits for the checks")
    ap.add_argument("--targets", default="vllm,chatgate")
    ap.add_argument("--modes", default="nonstream,stream,stream-buffered", help=f"any of {','.join(MODES)}")
    ap.add_argument("--model-dir", default=None, help="default: the Generator's model in deployments.yaml")
    ap.add_argument("--vllm-omp-threads", type=int, default=None,
                    help="OMP_NUM_THREADS for bare vLLM; default: the Generator's cpu_threads; 0 = unset")
    ap.add_argument("--app-args", type=json.loads, default={},
                    help='JSON merged into chatgate\'s deployments.yaml args, e.g. \'{"moderation": {"router_checks": []}}\'')
    ap.add_argument("--skip-micro", action="store_true", help="skip the classifier micro-benchmark")
    ap.add_argument("--baseline", type=Path, default=gate.BASELINE, help="--short: the ratios to hold")
    ap.add_argument("--json", type=Path, default=None, help="default tools/bench/results/{latest,short}.json")
    args = ap.parse_args(argv)
    defaults = SHORT if args.short else {"levels": "1,8,32", "requests": 16, "max_tokens": 64}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.skip_micro = args.skip_micro or args.short
    args.json = args.json or ROOT / "tools" / "bench" / "results" / ("short.json" if args.short else "latest.json")
    args.levels = [int(x) for x in str(args.levels).split(",") if x]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        ap.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.log_dir = args.json.parent
    prompts = load_prompts(args.prompts)
    if len(prompts) < needed(args.modes, args.levels, args.requests):
        print(f"note: {args.prompts} has {len(prompts)} prompts for {needed(args.modes, args.levels, args.requests)} "
              "requests: prompts repeat, and a repeated prompt is a cache hit for chatgate's checks", flush=True)
    t_start = time.monotonic()
    report: dict = {"machine": machine_info(), "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "command": "python -m tools.bench " + " ".join(sys.argv[1:] if argv is None else argv)}
    print(json.dumps(report["machine"]), flush=True)
    if not args.skip_micro:
        mb = subprocess.run([sys.executable, "-m", "tools.moderation.bench", "--n", "500", "--seconds", "2"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
        report["classifier_micro"] = (mb.stdout + mb.stderr).strip()
        print(report["classifier_micro"], flush=True)
    if "vllm" in targets:
        report["vllm"] = bench_vllm(args, prompts, args.model_dir)
    if "chatgate" in targets:
        report["chatgate"] = bench_chatgate(args, prompts)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["total_s"] = round(time.monotonic() - t_start, 1)
    report["table"] = render(report)
    args.json.write_text(json.dumps(report, indent=2))
    m = report["machine"]
    print(f"\nMachine: {m['cpu_model']}, {m['usable_cpus']} usable CPUs ({m['physical_cores']} physical cores), "
          f"{m['mem_gib']} GiB, vLLM {m['vllm']}; total {report['total_s']} s")
    print(f"max_tokens={args.max_tokens}, requests/level=max({args.requests}, level), prompts={args.prompts}\n")
    print(report["table"])
    print(f"\n(JSON: {args.json})")
    if not args.short:
        return 0
    if not args.baseline.exists():
        print(f"no baseline at {args.baseline}: calibrate one (python -m tools.bench.gate calibrate RUN.json ...)")
        return 1
    baseline = json.loads(args.baseline.read_text())
    print("\n" + gate.render_check(report, baseline))
    problems = gate.regressions(report, baseline)
    print("\n".join("REGRESSION: " + p for p in problems) or "no regression beyond the noise band")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
