"""Compare builds along the benign / harmful trade-off instead of at their own cuts.

    python -m tools.moderation.curve --data DIR MODEL_DIR [MODEL_DIR ...]

Why: a change that makes the heads bolder raises recall and the benign rates together (a move
along the curve); only a change that raises recall at the same benign rate is progress. Every
category's cut is shifted by the same delta (a row is flagged when max over categories of
score - cut >= delta); for each build the delta is chosen where the pooled benign inputs
(everyday, small talk, tricky, benign statements; all languages) reach a given flagged rate, and
harmful-input recall and each benign family's rate are printed there. Inputs only (answers: the
eval's AUC row). Held-out rows of DIR/eval.jsonl, as `tools.moderation.eval` reads them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tools.moderation.eval import HARMFUL, Scorer, eval_rows

BENIGN = {"everyday": ("everyday_benign", "smalltalk"), "tricky": ("tricky_benign",),
          "statements": ("benign_statement", "group_benign")}
BENIGN_FAMILIES = sum(BENIGN.values(), ())  # the pool the matched rates are read on
POOLED_RATES = (0.02, 0.05, 0.08, 0.12)


def harm_scores(model_dir: Path, rows: list[dict]) -> np.ndarray:
    from services.config import ModerationSettings
    from services.moderation import load_policy
    from services.moderation.scan import load_scanner

    settings = ModerationSettings(model_dir=model_dir)
    _, harm = Scorer(load_scanner(settings), load_policy(settings)).conversations([[r["text"]] for r in rows])
    return harm


def _rate(hit: np.ndarray) -> str:
    return f"{hit.mean():6.1%}" if hit.size else f"{'-':>6s}"


def report(name: str, harm: np.ndarray, fam: np.ndarray, lang: np.ndarray) -> list[str]:
    benign = np.isin(fam, BENIGN_FAMILIES)
    harmful = np.isin(fam, HARMFUL)
    requests = fam == "harmful_request"
    out = []
    for rate in (None, *POOLED_RATES):
        # delta = 0 is the build's own cuts; otherwise the quantile that flags `rate` of the benign pool
        delta = 0.0 if rate is None else float(np.quantile(harm[benign], 1 - rate))
        hit = harm >= delta
        cols = [_rate(hit[benign]), _rate(hit[requests]), _rate(hit[harmful])]
        cols += [_rate(hit[np.isin(fam, f)]) for f in BENIGN.values()]
        cols += [_rate(hit[benign & (lang == g)]) for g in ("de", "fr", "es")]
        out.append(f"{name:18s} {'own cuts' if rate is None else f'{rate:.0%} pooled':>10s} {delta:+7.3f} " + " ".join(cols))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--data", type=Path, required=True, help="folder with eval.jsonl")
    ap.add_argument("--per-family", type=int, default=300)
    args = ap.parse_args(argv)
    fams = set(HARMFUL) | set(BENIGN_FAMILIES)
    rows = [r for r in eval_rows(args.data / "eval.jsonl", args.per_family)
            if r["kind"] != "answer" and r["family"] in fams]
    fam = np.array([r["family"] for r in rows])
    lang = np.array([r["lang"] for r in rows])
    print(f"{len(rows)} input rows: benign {int(np.isin(fam, BENIGN_FAMILIES).sum())}, "
          f"harmful {int(np.isin(fam, HARMFUL).sum())}")
    print(f"{'build':18s} {'at':>10s} {'delta':>7s} {'benign':>6s} {'h.req':>6s} {'harm':>6s} "
          f"{'everyd':>6s} {'tricky':>6s} {'statem':>6s} {'de ben':>6s} {'fr ben':>6s} {'es ben':>6s}")
    for m in args.models:
        for line in report(m.name[:18], harm_scores(m, rows), fam, lang):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
