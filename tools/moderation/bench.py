"""Benchmark the built moderation classifier (CPU, onnxruntime).

    python -m tools.moderation.bench [--model-dir DIR] [--threads 1] [--n 2000] [--batch 32]

Prints: model size, load time, single-text latency p50/p99 (one text per call, `--threads`
intra-op threads, default 1), and batched throughput (texts/s at `--batch` texts per call).
Texts are the artifact's own held-out eval texts (questions, toxic comments, requests), so
lengths are realistic (mostly 5-40 words).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from services.config import ModerationSettings
from services.moderation import load_classifier


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=2000, help="single-text calls to time")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=3.0, help="time budget of the batched run")
    args = ap.parse_args(argv)
    model_dir = args.model_dir or ModerationSettings().model_dir
    model_dir = Path(model_dir).resolve()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    size = (model_dir / manifest["model_file"]).stat().st_size

    t0 = time.perf_counter()
    clf = load_classifier(model_dir, intra_op_threads=args.threads)
    load_s = time.perf_counter() - t0

    texts = [json.loads(line)["text"] for line in (model_dir / "eval.jsonl").read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(0)
    rng.shuffle(texts)
    words = np.array([len(t.split()) for t in texts])

    for t in texts[:50]:  # warm-up
        clf.score([t])
    lat = []
    for i in range(args.n):
        t = texts[i % len(texts)]
        s = time.perf_counter()
        clf.score([t])
        lat.append(time.perf_counter() - s)
    lat_ms = np.array(lat) * 1e3

    batches = [texts[i : i + args.batch] for i in range(0, len(texts) - args.batch + 1, args.batch)]
    done = 0
    s = time.perf_counter()
    k = 0
    while time.perf_counter() - s < args.seconds:
        clf.score(batches[k % len(batches)])
        done += args.batch
        k += 1
    tput = done / (time.perf_counter() - s)

    print(f"model            {model_dir.name}  ({manifest['key']})")
    print(f"model size       {size / 1e6:.2f} MB (model.onnx)")
    print(f"load time        {load_s * 1e3:.0f} ms (onnxruntime session)")
    print(f"texts            {len(texts)} eval texts, words median {int(np.median(words))}, p90 {int(np.percentile(words, 90))}")
    print(f"single text      p50 {np.percentile(lat_ms, 50):.3f} ms  p99 {np.percentile(lat_ms, 99):.3f} ms  "
          f"(n={args.n}, intra_op_threads={args.threads}, Python call overhead included)")
    print(f"batch of {args.batch:<3}     {tput:,.0f} texts/s (intra_op_threads={args.threads})")
    print(f"cpu              {os.cpu_count()} logical cores visible; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
