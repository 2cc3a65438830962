"""bfloat16 vs float32 for the engine on this CPU (issue 14: pick the dtype from what the CPU
supports). Offline vLLM, the served model, 8 chat prompts x 64 greedy tokens, one engine after the
other; prints start time, tok/s batched and single, and the first answers to eyeball.

    python -m tools.bench.dtype [--dtypes bfloat16,float32] [--max-tokens 64]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PROMPTS = ["Explain how a classification algorithm works", "Give me a recipe for pancakes",
           "Write a haiku about autumn", "What is the capital of France?", "How do I reverse a list in Python?",
           "Tell me a fun fact about octopuses", "Write an email asking for a day off", "What causes rain?"]


def measure(dtype: str, max_tokens: int) -> dict:
    from vllm import LLM, SamplingParams

    from services.config import load_settings

    gen = load_settings().generator
    t0 = time.time()
    llm = LLM(model=gen.model, dtype=dtype, enforce_eager=True, max_model_len=gen.max_model_len)
    start_s = time.time() - t0
    msgs = [[{"role": "user", "content": p}] for p in PROMPTS]
    params = SamplingParams(max_tokens=max_tokens, temperature=0)
    llm.chat(msgs[:1], params)  # warm-up
    t0 = time.time()
    outs = llm.chat(msgs, params)
    batch_s = time.time() - t0
    t0 = time.time()
    one = llm.chat(msgs[:1], params)
    single_s = time.time() - t0
    return {"dtype": dtype, "start_s": round(start_s, 1),
            "batch8_tok_s": round(sum(len(o.outputs[0].token_ids) for o in outs) / batch_s, 1),
            "single_tok_s": round(len(one[0].outputs[0].token_ids) / single_s, 1),
            "answers": [o.outputs[0].text[:80] for o in outs[:3]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", default="bfloat16,float32")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one engine per process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.max_tokens)), flush=True)
        return 0
    from services.generation.engine import resolve_dtype

    print(f"`auto` picks {resolve_dtype('auto')} on this machine")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    for dtype in args.dtypes.split(","):
        out = subprocess.run([sys.executable, "-m", "tools.bench.dtype", "--one", dtype, "--max-tokens", str(args.max_tokens)],
                             env=env, capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("{")), None)
        print(line or f"{dtype}: failed\n{out.stderr[-1500:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
