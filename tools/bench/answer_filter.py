"""How many everyday answers the output check replaces, at the served defaults and at chosen sampling.

    python -m tools.bench.answer_filter [--url http://127.0.0.1:8000] [--n 200] [--skip 0]
                                        [--sampling '{"temperature": 1.0, "top_p": 1.0}']

Sends `--n` held-out benign requests of loadtest/prompts_distinct.txt (all pass the input check)
to a running chatgate (`make run`), 8 at a time, 64 tokens, seed = the request's index, and prints
how many came back with `finish_reason: content_filter` and which. Without `--sampling` the
requests leave temperature / top_p out, so they get the served model's defaults
(`generator.default_temperature` / `default_top_p`). Each `--sampling` adds a row with those fields
set, for comparison in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import json

import httpx

from loadtest.common import load_prompts
from tools.bench.prompts import OUT as DISTINCT


async def replaced(client: httpx.AsyncClient, prompts: list[str], sampling: dict, concurrency: int = 8) -> list[str]:
    """The prompts whose answer the output check replaced (finish_reason content_filter)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, prompt: str) -> str | None:
        async with gate:
            body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 64, "seed": i, **sampling}
            resp = await client.post("/v1/chat/completions", json=body)
            resp.raise_for_status()
            return prompt if resp.json()["choices"][0]["finish_reason"] == "content_filter" else None

    return [p for p in await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts))) if p is not None]


async def run(url: str, prompts: list[str], rows: list[dict]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        for sampling in rows:
            hits = await replaced(client, prompts, sampling)
            print(f"{json.dumps(sampling) if sampling else 'served defaults'}: "
                  f"{len(hits)} of {len(prompts)} answers replaced at output")
            for p in hits:
                print(f"    {p[:100]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--skip", type=int, default=0, help="start this far into the prompt file")
    ap.add_argument("--sampling", action="append", type=json.loads, default=[])
    args = ap.parse_args(argv)
    prompts = load_prompts(DISTINCT)[args.skip:args.skip + args.n]
    asyncio.run(run(args.url, prompts, [{}] + args.sampling))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
