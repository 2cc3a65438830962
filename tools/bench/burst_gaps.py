"""Where a burst's long inter-token gaps fall: N async streams started at once against chatgate.

    flock /tmp/chatgate-live.lock python -m tools.bench.burst_gaps [--n 32] [--bursts 2] [--app-args JSON]

Prints, per burst, when the streams' first tokens arrived and the longest gaps between content
events, each with how many streams got their first token by its end. A gap that ends with a crowd
of first tokens is a prefill step of later arrivals stalling the streams already decoding
(docs/benchmark.md, experiment E): the async inter-token p99 at c=32 in `tools.bench`. After each
burst, the burst's own mean input-check time and first-token time from the Ray metrics: with
`--n 8`, where the c=8 async TTFT goes (experiment F).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

from loadtest.common import MODEL, load_prompts
from tools.bench.systems import scrape_stage_means
from tools.launch import ROOT, start_live_app
from tools.sse import aevents, delta_text

METRICS_LAG_S = 12  # Ray exports application metrics every few seconds: wait before reading a burst's
PROMPTS = load_prompts("prompts_distinct.txt")  # a new prompt per stream: a repeat is a cache hit for the checks


async def _stream(client: httpx.AsyncClient, url: str, prompt: str, t0: float) -> list[float]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 32,
            "temperature": 0, "seed": 1234, "stream": True, "moderation_mode": "async"}
    times: list[float] = []
    async with client.stream("POST", url, json=body) as r:
        async for chunk in aevents(r.aiter_lines()):
            if delta_text(chunk):
                times.append(time.perf_counter() - t0)
    return times


async def burst(base_url: str, n: int, first: int = 0) -> list[list[float]]:
    """n streams at once, prompts first..first+n of the pool (each burst its own)."""
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=n + 4)) as client:
        t0 = time.perf_counter()
        return await asyncio.gather(*(_stream(client, f"{base_url}/v1/chat/completions", PROMPTS[(first + i) % len(PROMPTS)], t0)
                                      for i in range(n)))


def report(streams: list[list[float]], label: str, top: int = 5) -> str:
    firsts = sorted(t[0] for t in streams if t)
    gaps = sorted(((b - a, a, b) for t in streams for a, b in zip(t, t[1:])), reverse=True)
    p99 = gaps[max(0, len(gaps) // 100 - 1)][0] if gaps else float("nan")
    lines = [f"{label}: first tokens {firsts[0] * 1e3:.0f}-{firsts[-1] * 1e3:.0f} ms (p50 {firsts[len(firsts) // 2] * 1e3:.0f}); "
             f"{len(gaps)} gaps, p99 {p99 * 1e3:.0f} ms"]
    for g, a, b in gaps[:top]:
        ending = sum(1 for f in firsts if a < f <= b + 0.02)  # the step that ends the gap delivers them
        lines.append(f"  gap {g * 1e3:5.0f} ms from {a * 1e3:5.0f} to {b * 1e3:5.0f} ms: "
                     f"{ending} streams' first tokens arrive by its end (+20 ms)")
    return "\n".join(lines)


def stage_report(before: dict, after: dict, stages: tuple[str, ...] = ("input_moderation", "ttft[async]")) -> str:
    """The burst's own mean per stage, from two scrapes of the cumulative Ray metrics."""
    parts = []
    for stage in stages:
        b, a = before.get(stage, {"mean_ms": 0.0, "count": 0}), after.get(stage)
        n = (a or {}).get("count", 0) - b["count"]
        if a and n > 0:
            parts.append(f"{stage} mean {(a['mean_ms'] * a['count'] - b['mean_ms'] * b['count']) / n:.0f} ms (n={n})")
    return "  this burst's stages (Ray metrics): " + (", ".join(parts) or "no samples yet")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="streams started at once")
    ap.add_argument("--bursts", type=int, default=2)
    ap.add_argument("--app-args", type=json.loads, default={}, help="JSON merged into the app's settings, e.g. "
                    "'{\"generator\": {\"engine_kwargs\": {\"max_num_batched_tokens\": 256}}}'")
    args = ap.parse_args(argv)
    app = start_live_app(timeout_s=420, user_config={"Router": {"streaming": {"allow_client_async": True}}},
                         app_args={"api": {"admission": {"max_active": args.n, "max_waiting": args.n}}, **args.app_args})
    try:
        asyncio.run(burst(app.base_url, 8, first=len(PROMPTS) - 8))  # warm-up, on prompts no burst sends
        time.sleep(METRICS_LAG_S)
        for k in range(args.bursts):
            before = scrape_stage_means(app.metrics_url)
            print(report(asyncio.run(burst(app.base_url, args.n, first=k * args.n)), f"burst {k + 1} of {args.n}"), flush=True)
            time.sleep(METRICS_LAG_S)
            print(stage_report(before, scrape_stage_means(app.metrics_url)), flush=True)
    finally:
        app.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
