"""Benchmark the built moderation Scanner on CPU (onnxruntime, one thread by default).

    python -m tools.moderation.bench [--model-dir DIR] [--threads 1] [--n 1000] [--batch 32] [--no-cascade] [--no-reveal]

Prints model size, load time and, through `Scanner` (windows + normalisation + both stages):
  turn          one conversation of one message <= 200 characters (scan_inputs), p50/p99
  benign turn   the same, benign texts only (most traffic; the cascade lets most of them go half way)
  conversation  ~1,000 characters in 4-8 messages, windowed (scan_inputs), p50/p99
  answer        one (request, answer window <= 250 chars) pair (scan_answers), p50/p99
  answer stream the windows of one answer checked one after another with their request, as a
                stream is, with the replicas' embedding cache on (the request is encoded once)
  batched       /v1/moderations-style: `--batch` single texts per scan_inputs call, texts/s
Texts are the artifact's held-out eval texts (eval.jsonl), so lengths and languages are realistic.
Every measure but "answer stream" runs with the embedding cache off: each text is encoded cold.
With the cascade (encoder_low/high.onnx), the last line says how many texts stopped half way.
Targets (issue 11, one core): turn p99 <= 15 ms, conversation p99 <= 50 ms, batched >= 300 texts/s.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from services.config import ModerationSettings
from services.moderation.scan import load_scanner
from services.moderation.semantic import EmbeddingCache
from tools.moderation.data.common import read_jsonl


def timed(fn, items, n: int) -> np.ndarray:
    for it in items[:20]:  # warm-up
        fn(it)
    lat = []
    for i in range(n):
        s = time.perf_counter()
        fn(items[i % len(items)])
        lat.append(time.perf_counter() - s)
    return np.array(lat) * 1e3


def conversations(texts: list[str], rng, chars: int = 1000) -> list[list[str]]:
    out, cur, size = [], [], 0
    for t in rng.permutation(texts).tolist():
        cur.append(t)
        size += len(t)
        if size >= chars:
            out.append(cur)
            cur, size = [], 0
    return out


def line(name: str, lat: np.ndarray, target: float | None = None) -> str:
    p99 = np.percentile(lat, 99)
    ok = "" if target is None else (f"  target p99 <= {target:g} ms: {'OK' if p99 <= target else 'MISSED'}")
    return f"{name:<14}p50 {np.percentile(lat, 50):6.2f} ms  p99 {p99:6.2f} ms  (n={len(lat)}){ok}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=1000, help="timed calls per latency measure")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0, help="time budget of the batched run")
    ap.add_argument("--no-cascade", action="store_true", help="every text through the whole encoder")
    ap.add_argument("--no-reveal", action="store_true", help="encoded payloads not looked for (services.moderation.decode)")
    args = ap.parse_args(argv)
    settings = ModerationSettings(intra_op_threads=args.threads, embedding_cache_size=0, cascade=not args.no_cascade,
                                  reveal_encoded=not args.no_reveal,
                                  **({"model_dir": args.model_dir} if args.model_dir else {}))
    model_dir = Path(settings.model_dir).resolve()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    files = ("encoder_low.onnx", "encoder_high.onnx", "heads.npz", "model.onnx")  # what run time loads
    sizes = {f: (model_dir / f).stat().st_size / 1e6 for f in files if (model_dir / f).is_file()}

    t0 = time.perf_counter()
    scanner = load_scanner(settings)
    load_s = time.perf_counter() - t0

    rows = read_jsonl(model_dir / "eval.jsonl")
    rng = np.random.default_rng(0)
    texts = [r["text"] for r in rows if r["kind"] != "answer"]
    turns = [t for t in texts if len(t) <= 200]
    benign_turns = [r["text"] for r in rows if r["kind"] != "answer" and not r["labels"] and len(r["text"]) <= 200]
    convs = conversations(texts, rng)
    pairs = [(r["context"] or "", r["text"][:250]) for r in rows if r["kind"] == "answer"]

    turn = timed(lambda t: scanner.scan_inputs([[t]]), rng.permutation(turns).tolist(), args.n)
    benign_turn = timed(lambda t: scanner.scan_inputs([[t]]), rng.permutation(benign_turns).tolist(), args.n)
    conv = timed(lambda c: scanner.scan_inputs([c]), convs, min(args.n, 400))
    ans = timed(lambda p: scanner.scan_answers([p]), pairs, min(args.n, 400))
    batches = [[[t] for t in texts[i : i + args.batch]] for i in range(0, len(texts) - args.batch + 1, args.batch)]
    done, k, s = 0, 0, time.perf_counter()
    while time.perf_counter() - s < args.seconds:
        scanner.scan_inputs(batches[k % len(batches)])
        done, k = done + args.batch, k + 1
    tput = done / (time.perf_counter() - s)
    scanner.semantic.cache = EmbeddingCache(ModerationSettings().embedding_cache_size)
    streams = [[(req, ans[i : i + 80]) for i in range(0, len(ans), 80)] for req, ans in pairs if len(ans) >= 160]
    stream = timed(lambda windows: [scanner.scan_answers([w]) for w in windows], streams, min(args.n, 200))
    per_window = stream / np.mean([len(w) for w in streams])

    print(f"model          {model_dir.name} (key {manifest['key']})")
    print("size           " + ", ".join(f"{f} {mb:.1f} MB" for f, mb in sizes.items()))
    print(f"load time      {load_s * 1e3:.0f} ms (onnxruntime sessions + tokenizer + heads)")
    print(f"texts          {len(turns)} turns <= 200 chars (median {int(np.median([len(t) for t in turns]))}), "
          f"{len(convs)} conversations of ~1,000 chars, {len(pairs)} answers")
    print(line("turn", turn, 15))
    print(line("benign turn", benign_turn) + "  (the turns without a label: what everyday traffic costs)")
    print(line("conversation", conv, 50))
    print(line("answer", ans))
    print(line("answer stream", per_window) + "  (per window of 80 chars, cache on)")
    print(f"batched        {tput:,.0f} texts/s (batch {args.batch})  target >= 300: {'OK' if tput >= 300 else 'MISSED'}")
    gate = scanner.semantic.gate_counts
    if sum(gate.values()):
        print(f"cascade        {gate['let_go'] / sum(gate.values()):.0%} of the texts encoded stopped after the lower half "
              f"({gate['let_go']:,} of {sum(gate.values()):,}; eval texts, about half of them harmful)")
    print(f"cpu            intra_op_threads={args.threads}; {os.cpu_count()} logical cores visible; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
