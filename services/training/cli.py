"""`chatgate train <stage> [options]`: runs one stage (or `all` four in order) and prints its numbers."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ("pretrain", "sft", "reward", "ppo")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="pre-training, SFT, reward model and PPO (docs/training.md)")
    p.add_argument("stage", choices=(*ORDER, "all"))
    p.add_argument("--steps", type=int, help="training steps (PPO: iterations)")
    p.add_argument("--workers", type=int, help="run on N Ray Train workers (own Ray instance)")
    p.add_argument("--data", type=Path, help="a `chatgate data export` folder (sft, reward)")
    p.add_argument("--base", help="sft/reward: model to start from (stage name, run or folder)")
    p.add_argument("--task", choices=("registry", "synthetic", "export"), help="reward: which pairs")
    p.add_argument("--track", choices=("tiny", "smollm2"), default="tiny",
                   help="smollm2: SFT starts from SmolLM2-135M-Instruct instead of the tiny model")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", type=Path, help="runs folder (default $CHATGATE_CACHE/training/runs)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other config field, e.g. --set lr=3e-4 --set kl_coef=0.1 (JSON values)")
    p.add_argument("--force", action="store_true", help="retrain even if a finished run has these inputs")
    p.set_defaults(func=_train)


def config_for(stage: str, args):
    from services.config import cache_dir
    from services.training.config import STAGES

    fields = {}
    for name, key in (("steps", "steps"), ("workers", "workers"), ("data", "data"), ("base", "base"),
                      ("task", "task"), ("seed", "seed"), ("out", "out_root")):
        value = getattr(args, name, None)
        if value is not None and key in STAGES[stage].model_fields:
            fields[key] = value
    if args.track == "smollm2" and stage == "sft" and "base" not in fields:
        fields["base"] = str(cache_dir() / "models" / "smollm2-135m-instruct")
    for item in args.set:
        key, _, raw = item.partition("=")
        if key in STAGES[stage].model_fields:
            try:
                fields[key] = json.loads(raw)
            except ValueError:
                fields[key] = raw
    return STAGES[stage](**fields)


def _train(args) -> int:
    from services.training import runner

    stages = ORDER if args.stage == "all" else (args.stage,)
    if args.track == "smollm2":
        stages = tuple(s for s in stages if s != "pretrain")  # SmolLM2 is the pre-trained base
    for stage in stages:
        cfg = config_for(stage, args)
        metrics = runner.run(stage, cfg, force=args.force)
        print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}, indent=2, default=str))
        print(f"[train] {stage}: {cfg.roots()[0] / metrics['run']} (model/, metrics.json, curves.png)", file=sys.stderr)
    return 0
