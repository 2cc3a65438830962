"""Scaled-down, same-data A/B of the semantic encoder (MiniLM int8 vs e5-small Q4): semantic heads only.

    OMP_NUM_THREADS=1 python -m tools.moderation.experiments.e5.ab_small --train-cap 40 --eval-cap 20
Train rows: at most --train-cap per (family, lang, kind) of data/train.jsonl (hash-chosen), augmented as in
semantic_build; heads + CV cuts from tools.moderation.semantic_train. Eval: capped eval.jsonl + handwritten rows,
text head on inputs, answer head on (answer, request). Flag = any category prob >= its CV cut (no policy, no lexical).
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path
import numpy as np

from tools.moderation.experiments.e5.build_e5 import cap_per_kind, head_rows
from tools.moderation.experiments.e5.e5enc import WORK, E5Encoder
from services.moderation.encoder import Encoder
from services.moderation.heads import mlp_probs
from services.moderation.normalize import normalize, obfuscations
from tools.moderation import semantic_train as st
from tools.moderation.eval import capped, handwritten_rows, roc_auc, RATES
from tools.moderation.semantic_build import FP_COST, read_rows

ap = argparse.ArgumentParser()
ap.add_argument("--train-cap", type=int, default=40)
ap.add_argument("--eval-cap", type=int, default=20)
ap.add_argument("--data", type=Path, default=Path(f"{WORK}/data"))
ap.add_argument("--out", type=Path, default=Path(f"{WORK}/ab_small.json"))
ap.add_argument("--std", action="store_true", help="standardise head inputs (folded into w1/b1)")
args = ap.parse_args()
STD = args.std
import torch
torch.set_num_threads(1)

train = cap_per_kind([r for r in read_rows(args.data / "train.jsonl") if r["split"] == "train"], args.train_cap)
rows, _, _, ans_rows = head_rows(train, normalize, obfuscations)
ev = capped(read_rows(args.data / "eval.jsonl"), args.eval_cap) + handwritten_rows()
ev = [{**r, "text": normalize(r["text"]), "context": normalize(r.get("context") or "")} for r in ev]
texts = sorted(set([r["text"] for r in rows] + [r["context"] for r in ans_rows] + [r["text"] for r in ev] + [r["context"] for r in ev]))
print(f"train {len(train)} -> {len(rows)} aug rows, answer head {len(ans_rows)}; eval {len(ev)} rows; {len(texts)} unique texts", flush=True)
md = Path.home() / ".cache/chatgate/classifier/current"
encs = {"minilm": lambda: Encoder(md / "encoder.onnx", md / "tokenizer.json", threads=1), "e5": lambda: E5Encoder()}
result = {"n_train": len(train), "n_eval": len(ev), "n_texts": len(texts)}
for name, mk in encs.items():
    cache = Path(f"{WORK}/emb_{name}.npz")
    E = {}
    if cache.is_file():
        d = np.load(cache, allow_pickle=False); E = dict(zip(d["texts"].tolist(), d["emb"]))
    todo = [t for t in texts if t not in E]
    c0, t0 = time.process_time(), time.time()
    if todo:
        enc = mk()
        for i in range(0, len(todo), 256):
            b = todo[i:i + 256]
            E.update(zip(b, enc.embed(b)))
        np.savez(cache, texts=np.array(list(E)), emb=np.stack(list(E.values())))
    te, tc = time.time() - t0, time.process_time() - c0
    print(f"[{name}] embedded {len(todo)} new texts: wall {te:.0f}s, cpu {tc:.0f}s ({len(texts) / tc:.1f} texts per cpu-s)", flush=True)
    flag = np.zeros(len(ev), dtype=bool); harm = np.zeros(len(ev))
    for hname, hrows in (("text", rows), ("answer", ans_rows)):
        x = np.stack([E[r["text"]] for r in hrows])
        if hname == "answer":
            x = st.pair_features(x, np.stack([E[r["context"]] for r in hrows]))
        y = st.label_matrix(hrows); w = np.ones(len(hrows), dtype=np.float32)
        if not STD:
            cuts, oof = st.cross_validate(x, y, [r["group"] for r in hrows], w, FP_COST[hname], hname)
        if STD:  # standardise inputs (e5 embeddings are anisotropic), folded into w1/b1 so the runtime head is unchanged
            mu, sd = x.mean(0), x.std(0) + 1e-6
            xs = ((x - mu) / sd).astype(np.float32)
            cuts, oof = st.cross_validate(xs, y, [r["group"] for r in hrows], w, FP_COST[hname], hname)
            h0 = st.fit_mlp(xs, y, w)
            head = {"w1": (h0["w1"] / sd[:, None]).astype(np.float32), "b1": (h0["b1"] - (mu / sd) @ h0["w1"]).astype(np.float32),
                    "w2": h0["w2"], "b2": h0["b2"], "cuts": cuts}
        else:
            head = {**st.fit_mlp(x, y, w), "cuts": cuts}
        print(f"[{name}] {hname} cuts {np.round(cuts, 2).tolist()}", flush=True)
        idx = [i for i, r in enumerate(ev) if (r["kind"] == "answer") == (hname == "answer")]
        xe = np.stack([E[ev[i]["text"]] for i in idx])
        if hname == "answer":
            xe = st.pair_features(xe, np.stack([E[ev[i]["context"]] for i in idx]))
        p = mlp_probs(head, xe)
        flag[idx] = (p >= cuts).any(1); harm[idx] = (p - cuts).max(1)
    fam = np.array([r["family"] for r in ev]); kind = np.array([r["kind"] for r in ev]); lang = np.array([r["lang"] for r in ev])
    lab = np.array([bool(r["labels"]) for r in ev]); ans = kind == "answer"
    res = {"embed_wall_s": round(te, 1), "embed_cpu_s": round(tc, 1)}
    for mname, fams, k, _, _ in RATES:
        m = np.isin(fam, fams) & ((kind == k) if k else True)
        res[mname] = (int(m.sum()), float(flag[m].mean()) if m.any() else float("nan"))
    pos, neg = ans & (fam == "harmful_answer"), ans & np.isin(fam, ("refusal", "benign_answer"))
    res["harmful-answer AUC"] = (int((pos | neg).sum()), roc_auc(pos[pos | neg], harm[pos | neg]))
    for lg in ("en", "de", "fr", "es"):
        m = (lang == lg) & ~ans
        res[f"{lg}: harmful inputs flagged"] = (int((m & lab).sum()), float(flag[m & lab].mean()))
        res[f"{lg}: benign inputs flagged"] = (int((m & ~lab).sum()), float(flag[m & ~lab].mean()))
        ma = (lang == lg) & ans
        res[f"{lg}: harmful answers flagged"] = (int((ma & lab).sum()), float(flag[ma & lab].mean()) if (ma & lab).any() else float("nan"))
        res[f"{lg}: benign/refusal answers flagged"] = (int((ma & ~lab).sum()), float(flag[ma & ~lab].mean()) if (ma & ~lab).any() else float("nan"))
    result[name] = res
    args.out.write_text(json.dumps(result, indent=1))
keys = [k for k in result["minilm"] if k not in ("embed_wall_s", "embed_cpu_s")]
print(f"{'measure':52} {'n':>5} {'MiniLM':>8} {'e5':>8}")
for k in keys:
    n, a = result["minilm"][k]; _, b = result["e5"][k]
    f = (lambda v: f"{v:.3f}") if "AUC" in k else (lambda v: f"{v:.1%}")
    print(f"{k:52} {n:5d} {f(a):>8} {f(b):>8}")
