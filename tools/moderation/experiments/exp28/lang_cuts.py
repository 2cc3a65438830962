"""Experiment 28 (model card), part 1: would per-language cut offsets help? An upper bound: the
offset is applied to every category's cut of one language on the eval inputs themselves.

    python -m tools.moderation.experiments.exp28.lang_cuts [--model-dir DIR] [--data DIR]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from services.config import ModerationSettings
from tools.moderation.curve import BENIGN_FAMILIES, harm_scores
from tools.moderation.eval import HARMFUL, eval_rows

OFFSETS = (0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3)


def input_rows(data: Path) -> list[dict]:
    """The eval inputs the curve tool reads: every benign and harmful input family, 300 per family and language."""
    fams = set(HARMFUL) | set(BENIGN_FAMILIES)
    return [r for r in eval_rows(data / "eval.jsonl", 300) if r["kind"] != "answer" and r["family"] in fams]


def parse_args(doc: str | None, argv: list[str] | None) -> argparse.Namespace:
    """--model-dir and --data, both defaulting to the built artefact (experiment 28's scripts)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ModerationSettings().model_dir
    ap.add_argument("--model-dir", type=Path, default=default)
    ap.add_argument("--data", type=Path, default=default, help="folder with eval.jsonl")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    rows = input_rows(args.data)
    harm = harm_scores(args.model_dir, rows)
    fam = np.array([r["family"] for r in rows])
    lang = np.array([r["lang"] for r in rows])
    benign, harmful = np.isin(fam, BENIGN_FAMILIES), np.isin(fam, HARMFUL)
    for lg in ("en", "de", "fr", "es"):
        m = lang == lg
        print(f"{lg}: {int((m & benign).sum())} benign, {int((m & harmful).sum())} harmful inputs")
        for d in OFFSETS:
            print(f"  cuts {d:+.2f}: benign flagged {np.mean(harm[m & benign] >= d):6.1%}  "
                  f"harmful flagged {np.mean(harm[m & harmful] >= d):6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
