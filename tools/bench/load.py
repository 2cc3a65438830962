"""The load driver: prompts at a fixed concurrency, per-request timings as a user feels them.

Per request: TTFT (first content), time to the first 32 characters (what a buffered stream must
beat), gaps between content events (inter-token latency, vLLM's convention: one gap per SSE event)
and end-to-end time; per level: the p50/p90/p99 of each, pooled over its requests."""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass, field

import httpx

from loadtest.common import MODEL, percentile
from tools.bench.cpu import CpuSnapshot
from tools.bench.prompts import slices
from tools.bench.targets import BARE_BUFFERED
from tools.sse import StreamTimer, aevents

# mode -> (streamed?, chatgate's moderation_mode, row label). Bare vLLM has no moderation, so its
# "stream" row is the baseline for both chatgate stream rows.
MODES = {
    "nonstream": (False, None, "non-stream"),
    "stream": (True, "async", "stream"),
    "stream-buffered": (True, "buffered", "stream-buffered"),
}
QUANTILES = (50, 90, 99)


def dist(values: list[float]) -> dict[str, float | None]:
    """Seconds in, {"p50": ms, "p90": ms, "p99": ms} out (None when there were no values)."""
    out: dict[str, float | None] = {}
    for q in QUANTILES:
        v = percentile(values, q)
        out[f"p{q}"] = None if v is None else round(v * 1e3, 1)
    return out


@dataclass
class Result:
    target: str
    level: int
    requests: int
    errors: int
    wall_s: float
    req_s: float
    tok_s: float
    tok_per_req: float
    e2e: dict
    ttft: dict
    first32: dict  # time to the first 32 characters
    itl: dict  # gaps between content events, pooled over the level's requests
    loadavg: float
    error_samples: list[str] = field(default_factory=list)
    cpu: dict = field(default_factory=dict)  # cores per process role during the level (tools/bench/cpu.py)
    cpu_wait: dict = field(default_factory=dict)  # per role: share of the level spent runnable, waiting for a CPU
    templated: int = 0  # answers replaced by a template (finish_reason content_filter): not the answered path


@dataclass
class Timing:
    e2e: float
    tokens: int
    ttft: float | None = None
    first32: float | None = None
    gaps: list[float] = field(default_factory=list)
    templated: bool = False


async def one_request(client: httpx.AsyncClient, url: str, body: dict, stream: bool) -> Timing:
    t0 = time.perf_counter()
    if not stream:
        r = await client.post(url, json=body)
        r.raise_for_status()
        data = r.json()
        return Timing(time.perf_counter() - t0, int(data["usage"]["completion_tokens"]),
                      templated=data["choices"][0].get("finish_reason") == "content_filter")
    timer = StreamTimer(t0=t0)
    async with client.stream("POST", url, json=body) as r:
        if r.status_code != 200:
            await r.aread()
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        async for chunk in aevents(r.aiter_lines()):
            timer.add(chunk)
    timer.finish()
    return Timing(time.perf_counter() - t0, timer.completion_tokens, timer.ttft, timer.t_first_chars, timer.gaps,
                  timer.finish_reason == "content_filter")


async def drive(base_url: str, target: str, prompts: list[str], level: int, n: int, max_tokens: int,
                stream: bool, extra: dict) -> Result:
    url = base_url.rstrip("/") + "/v1/chat/completions"
    sem = asyncio.Semaphore(level)
    timings: list[Timing] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=level + 4, max_keepalive_connections=level + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        async def worker(i: int):
            body = {"model": MODEL, "messages": [{"role": "user", "content": prompts[i % len(prompts)]}],
                    "max_tokens": max_tokens, "temperature": 0, "seed": 1234, **extra}
            if stream:
                body.update(stream=True, stream_options={"include_usage": True})
            async with sem:
                try:
                    timings.append(await one_request(client, url, body, stream))
                except Exception as exc:  # noqa: BLE001 - counted and sampled, the level goes on
                    errors.append(repr(exc)[:200])

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(n)))
        wall = time.perf_counter() - t0
    ok = len(timings)
    tokens = sum(t.tokens for t in timings)
    pick = lambda attr: [getattr(t, attr) for t in timings if getattr(t, attr) is not None]  # noqa: E731
    return Result(target, level, n, len(errors), round(wall, 2), round(ok / wall, 3), round(tokens / wall, 1),
                  round(tokens / ok, 1) if ok else 0.0, dist(pick("e2e")), dist(pick("ttft")), dist(pick("first32")),
                  dist([g for t in timings for g in t.gaps]), round(os.getloadavg()[0], 2), errors[:3],
                  templated=sum(t.templated for t in timings))


def run_levels(base_url: str, name: str, modes: list[str], levels: list[int], prompts: list[str],
               requests: int, max_tokens: int, chatgate: bool, sampler=None) -> list[dict]:
    """Every mode at every level (bare vLLM streams buffered's prompts plainly); warm-up first."""
    out = []
    # Each (mode, level) and each warm-up gets prompts of its own, the same for both systems: a prompt
    # sent twice is a cache hit for chatgate's checks, which real users' new messages are not.
    share = slices(prompts, modes, levels, requests)
    extra = {m: ({"moderation_mode": MODES[m][1]} if chatgate and MODES[m][1] else {}) for m in modes}
    # Warm-up, per mode at the top level's concurrency: first-time costs are not measured. A first
    # burst of 8 streams cost chatgate +250 ms TTFT while the warm-up was 2 wide (experiment F).
    top = max(levels)
    for mode in modes:
        asyncio.run(drive(base_url, "warmup", share[(mode, "warmup")], top, top, 8, MODES[mode][0], extra[mode]))
    for mode in modes:
        stream, _, label = MODES[mode]
        if not chatgate and mode == "stream-buffered":  # bare vLLM has no moderation: a plain stream
            label = BARE_BUFFERED  # on the buffered row's own prompts, so both rows see the same texts
        for level in levels:
            if sampler:
                sampler.hold()
            cpu0 = CpuSnapshot()
            mine = share[(mode, str(level))]
            r = asyncio.run(drive(base_url, f"{name} {label}", mine, level, len(mine), max_tokens, stream, extra[mode]))
            cpu1 = CpuSnapshot()
            r.cpu, r.cpu_wait = cpu1.cores_since(cpu0), cpu1.waits_since(cpu0)
            if sampler:
                sampler.sample()
            print(f"  {r.target:<26} c={level:<3} {r.req_s:6.2f} req/s {r.tok_s:7.1f} tok/s  e2e p50 {r.e2e['p50']}"
                  f"  ttft p50 {r.ttft['p50']}  itl p99 {r.itl['p99']} ms  errors {r.errors}  templated {r.templated}"
                  f"  load {r.loadavg}",
                  flush=True)
            print(f"    cpu (cores): {', '.join(f'{k} {v}' for k, v in r.cpu.items())}", flush=True)
            print(f"    waiting for a cpu (share of the level): {', '.join(f'{k} {v}' for k, v in r.cpu_wait.items())}", flush=True)
            out.append(asdict(r))
    return out
