"""How often a running chatgate replaces the served model's answer to an everyday question at output.

    python -m tools.moderation.output_probe --url http://127.0.0.1:8000 --lang en --first 30 --seeds 1,2,3
    python -m tools.moderation.output_probe --lang en --skip 30 --first 30      # the next 30

Asks each hand-written question of `eval_data/natural_questions.yaml` (one language, a slice) once
per seed at temperature 1.0 against `make run`, and counts the answers that came back with
finish_reason `content_filter` although `/v1/moderations` passes the question: those are blocks at
output. Session 25's probe (model card, experiment 29) was the en questions 1-30 (household) and
31-60 (other everyday), seeds 1-3. The eval's `natural_question` row judges one stored answer per
question offline; this judges fresh answers through the whole pipeline.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import httpx

from loadtest.common import MODEL
from tools.moderation.model_answers import natural_rows

QUESTIONS = Path(__file__).with_name("eval_data") / "natural_questions.yaml"


def output_blocks(answers: list[tuple[str, int, str]], input_flagged: dict[str, bool]) -> list[tuple[str, int]]:
    """(question, seed, finish_reason) -> the (question, seed) pairs blocked at output, not at input."""
    return [(q, seed) for q, seed, reason in answers if reason == "content_filter" and not input_flagged[q]]


async def probe(url: str, questions: list[str], seeds: list[int], max_tokens: int, concurrency: int):
    sem = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, q: str, seed: int) -> tuple[str, int, str]:
        async with sem:
            r = await client.post(f"{url}/v1/chat/completions", json={
                "model": MODEL, "messages": [{"role": "user", "content": q}], "max_tokens": max_tokens,
                "temperature": 1.0, "seed": seed}, timeout=300)
            r.raise_for_status()
            return q, seed, r.json()["choices"][0]["finish_reason"]

    async with httpx.AsyncClient() as client:
        mod = await client.post(f"{url}/v1/moderations", json={"input": questions}, timeout=300)
        mod.raise_for_status()
        flagged = {q: res["flagged"] for q, res in zip(questions, mod.json()["results"])}
        answers = await asyncio.gather(*(one(client, q, s) for q in questions for s in seeds))
    return list(answers), flagged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--lang", default="en")
    ap.add_argument("--skip", type=int, default=0, help="questions of the language to skip first")
    ap.add_argument("--first", type=int, default=30, help="questions to ask after the skipped ones")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args(argv)

    questions = [r["text"] for r in natural_rows(QUESTIONS) if r["lang"] == args.lang][args.skip:args.skip + args.first]
    seeds = [int(s) for s in args.seeds.split(",")]
    answers, flagged = asyncio.run(probe(args.url, questions, seeds, args.max_tokens, args.concurrency))
    blocked = output_blocks(answers, flagged)
    print(f"{len(answers)} answers to {len(questions)} questions ({args.lang}, seeds {args.seeds}): "
          f"{len(blocked)} blocked at output ({len(blocked) / max(1, len(answers)):.1%}); "
          f"questions flagged at input: {sum(flagged.values())}")
    for q, seed in blocked:
        print(f"  seed {seed}: {q}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
