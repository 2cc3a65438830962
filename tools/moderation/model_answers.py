"""What the served chat model really answers to benign requests: data for output moderation.

    python -m tools.moderation.model_answers --data DIR --split eval --per-lang 60 --out FILE.jsonl
    python -m tools.moderation.model_answers --requests tools/moderation/eval_data/natural_questions.yaml --out FILE.jsonl

Output moderation judges *this model's* answers, window by window, so its false positives are
measured on them: hand-written or templated answers are not how SmolLM2 writes. The command
starts bare vLLM with chatgate's engine settings (tools/bench/systems.py), sends the benign
requests of one split of the moderation data (tools.moderation.data: everyday and tricky benign
requests, benign questions, small talk; at most --per-lang per family and language, chosen by
hash) as single-turn chats, and writes one JSON object a line: request, answer, finish_reason,
family, lang, source, group, split, sampling, windows (the answer cut as the pipeline cuts it). Sampling is
what users get when they leave it out (`generator.default_temperature` / `default_top_p`, the
model card's 0.2 / 0.9) unless `--temperature` / `--top-p` say otherwise (the first files were
sampled at OpenAI's 1.0 / 1.0), with a seed per request, so a rerun on the same engine and dtype
gives the same answers.

`--requests` takes hand-written held-out questions instead ({lang: [question, ...]}, family
`natural_question`, split eval): people's own phrasings, which the generated frames do not cover.

The eval reads the committed eval-split files (eval_data/model_answers_defaults.jsonl at the served
defaults, eval_data/model_answers.jsonl at 1.0 / 1.0: "model answers to benign requests flagged",
one row per sampling); the build trains the answer head on the train-split files
(data/model_answers_train*.jsonl, the same two samplings), which share no request, template or
task with them.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tools.moderation.data.common import read_jsonl

FAMILIES = ("everyday_benign", "tricky_benign", "benign_question", "smalltalk")
NATURAL_FAMILY = "natural_question"  # hand-written held-out questions (--requests)


def pick(rows: list[dict], split: str, per_lang: int) -> list[dict]:
    """Benign requests of `split`, at most per_lang per (family, language), by hash (stable)."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["split"] == split and r["family"] in FAMILIES and r["kind"] == "request" and not r["labels"]:
            out.setdefault((r["family"], r["lang"]), []).append(r)
    chosen = []
    for key in sorted(out):
        chosen += sorted(out[key], key=lambda r: hashlib.sha256(r["text"].encode()).hexdigest())[:per_lang]
    return chosen


def natural_rows(path: Path) -> list[dict]:
    """Hand-written questions {lang: [text, ...]} as eval-split request rows."""
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [{"text": t, "family": NATURAL_FAMILY, "lang": lang, "source": "handwritten", "group": f"natural:{lang}:{i}", "split": "eval"}
            for lang, texts in doc.items() for i, t in enumerate(texts)]


def windows_of(answer: str) -> list[str]:
    """The windows the pipeline checks for this answer (default streaming settings)."""
    from services.config import StreamingSettings
    from services.pipeline.windows import WindowSplitter

    splitter = WindowSplitter(StreamingSettings())
    splitter.add(answer)
    return [w.text for w in splitter.all_windows()]


def seed_of(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:7], 16)


async def ask_all(base: str, model: str, rows: list[dict], max_tokens: int, concurrency: int,
                  sampling: dict[str, float]) -> list[dict]:
    sem = asyncio.Semaphore(concurrency)
    done = 0
    t0 = time.monotonic()

    async def one(client: httpx.AsyncClient, r: dict) -> dict:
        nonlocal done
        async with sem:
            body = {"model": model, "messages": [{"role": "user", "content": r["text"]}],
                    "max_tokens": max_tokens, **sampling, "seed": seed_of(r["text"])}
            resp = await client.post(f"{base}/v1/chat/completions", json=body, timeout=600)
            resp.raise_for_status()
            choice = resp.json()["choices"][0]
        done += 1
        if done % 50 == 0 or done == len(rows):
            print(f"[model_answers] {done}/{len(rows)} answers ({time.monotonic() - t0:.0f}s)", flush=True)
        answer = choice["message"]["content"] or ""
        return {"request": r["text"], "answer": answer, "finish_reason": choice["finish_reason"],
                **{k: r[k] for k in ("family", "lang", "source", "group", "split")}, "sampling": sampling,
                "windows": windows_of(answer)}

    async with httpx.AsyncClient() as client:
        return list(await asyncio.gather(*(one(client, r) for r in rows)))


def main(argv: list[str] | None = None) -> int:
    from loadtest.common import MODEL
    from services.generation.engine import spin_sleep_env
    from tools.bench.systems import engine_settings, vllm_command, wait_ready
    from tools.launch import free_port

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="folder with train.jsonl / eval.jsonl (tools.moderation.data)")
    src.add_argument("--requests", type=Path, help="hand-written held-out questions, YAML {lang: [text, ...]}")
    ap.add_argument("--split", choices=("train", "eval"), help="with --data (required there): whose requests")
    ap.add_argument("--per-lang", type=int, default=60, help="requests per (family, language) at most")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--temperature", type=float, help="default: generator.default_temperature (what users get)")
    ap.add_argument("--top-p", type=float, help="default: generator.default_top_p")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.data and not args.split:
        ap.error("--data needs --split")

    if args.requests:
        chosen = natural_rows(args.requests)
    else:
        rows = read_jsonl(args.data / f"{args.split}.jsonl")
        chosen = pick(rows, args.split, args.per_lang)
    print(f"[model_answers] {len(chosen)} benign {'hand-written' if args.requests else args.split} requests", flush=True)
    gen = engine_settings()
    sampling = {"temperature": gen.default_temperature if args.temperature is None else args.temperature,
                "top_p": gen.default_top_p if args.top_p is None else args.top_p}
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=str(gen.cpu_kvcache_gib), VLLM_CPU_OMP_THREADS_BIND="nobind",
               HF_HUB_OFFLINE="1", **spin_sleep_env(gen))
    env.pop("OMP_NUM_THREADS", None)  # both cores: nothing else runs beside it here
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log = open(args.out.with_suffix(".vllm.log"), "w")
    proc = subprocess.Popen(vllm_command(gen, port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, 300)
        answers = asyncio.run(ask_all(f"http://127.0.0.1:{port}", MODEL, chosen, args.max_tokens, args.concurrency,
                                   sampling))
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    args.out.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers), encoding="utf-8")
    print(f"[model_answers] wrote {len(answers)} answers to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
