"""chatgate vs bare vLLM, side by side on the same engine, model, prompts and machine, in one run.

    python -m tools.bench [--levels 1,8,32] [--requests 16] [--max-tokens 64] [--targets vllm,chatgate]
                          [--modes nonstream,stream,stream-buffered] [--json tools/bench/results/latest.json]

1. the moderation classifier micro-benchmark (`python -m tools.moderation.bench`, short);
2. bare vLLM's OpenAI server (same model folder, dtype float32, enforce-eager, max-model-len 2048,
   VLLM_CPU_KVCACHE_SPACE=1, as chatgate's deployments.yaml) - started, driven, stopped;
3. chatgate (tools/run.sh through tests/live.py: own Redis, free ports, no Celery worker) - same.
Never both at once. Each target is driven with the same prompts (temperature 0, fixed seed) at each
concurrency level, non-streaming and streaming (chatgate streaming in both moderation modes: async,
the mode the TTFT target is about, and buffered, the default; both compared with bare streaming). Requests per level: max(--requests, level). Prints one table and
the chatgate / bare ratios; also launch->ready time and peak memory (sum of RSS and of PSS over
every process of the system, sampled while it starts and between load levels; see MemorySampler).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from loadtest.common import MODEL, load_prompts, percentile  # noqa: E402


# ----------------------------------------------------------------------------------- machine
def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    import vllm  # noqa: F401 - version only

    return {"cpu_model": model or platform.processor(), "logical_cpus": os.cpu_count(), "usable_cpus": affinity,
            "physical_cores": psutil.cpu_count(logical=False), "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "vllm": vllm.__version__, "platform": platform.platform(),
            "loadavg_start": os.getloadavg()}


# ------------------------------------------------------------------------------- memory sampler
class MemorySampler(threading.Thread):
    """Samples every process created since `start` (RSS, PSS, ppid, cmdline); which of them belong to
    the system is decided afterwards (`peak(select)`), when ports are known.

    Every few seconds while the system starts, then only between load levels (`hold()` stops the
    periodic sampling, `sample()` takes one): PSS reads /proc/PID/smaps_rollup, which walks each
    process's memory map, and for Ray's ~50 processes that costs enough CPU, in this very process,
    to slow the measured system during a level. Memory is allocated at start-up (weights, KV cache)
    and Python processes do not hand it back, so the between-level samples still see the peak."""

    def __init__(self, interval: float = 5.0):
        super().__init__(daemon=True)
        self.t0 = time.time() - 1.0
        self.interval = interval
        self.samples: list[dict[int, tuple[int, int]]] = []
        self.ppid: dict[int, int] = {}
        self.cmd: dict[int, str] = {}
        self._halt = threading.Event()
        self._held = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            if not self._held.is_set():
                self.sample()
            self._halt.wait(self.interval)

    def hold(self) -> None:
        self._held.set()

    def sample(self) -> None:
        with self._lock:
            snap: dict[int, tuple[int, int]] = {}
            for p in psutil.process_iter(["pid", "ppid", "create_time"]):
                try:
                    if p.info["create_time"] < self.t0 or p.pid == os.getpid():
                        continue
                    if p.pid not in self.cmd:
                        self.cmd[p.pid] = " ".join(p.cmdline())
                    self.ppid.setdefault(p.pid, p.info["ppid"])  # first sight: at shutdown they re-parent to 1
                    mi = p.memory_full_info()
                    snap[p.pid] = (mi.rss, getattr(mi, "pss", mi.rss))
                except Exception:  # noqa: BLE001 - a vanished/odd process must not end the sampling
                    continue
            if snap:
                self.samples.append(snap)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def members(self, roots: set[int], match: list[str]) -> set[int]:
        chosen = set(roots) | {pid for pid, c in self.cmd.items() if any(m in c + " " for m in match)}
        changed = True
        while changed:  # add descendants
            changed = False
            for pid, pp in self.ppid.items():
                if pp in chosen and pid not in chosen:
                    chosen.add(pid)
                    changed = True
        return chosen

    def peak(self, pids: set[int]) -> dict:
        best_rss = best_pss = 0
        for snap in self.samples:
            best_rss = max(best_rss, sum(v[0] for p, v in snap.items() if p in pids))
            best_pss = max(best_pss, sum(v[1] for p, v in snap.items() if p in pids))
        top = {}
        for snap in self.samples:
            for p, v in snap.items():
                if p in pids:
                    top[p] = max(top.get(p, 0), v[0])
        biggest = sorted(top.items(), key=lambda kv: -kv[1])[:6]
        others: dict[int, int] = {}
        for snap in self.samples:
            for p, v in snap.items():
                if p not in pids and v[0] > 100 * 2**20:
                    others[p] = max(others.get(p, 0), v[0])
        return {"samples": len(self.samples), "peak_rss_gib": round(best_rss / 2**30, 2), "peak_pss_gib": round(best_pss / 2**30, 2),
                "processes": len(pids),
                "largest": [{"pid": p, "rss_gib": round(r / 2**30, 2), "cmd": self.cmd.get(p, "")[:90]} for p, r in biggest],
                "not_counted_over_100mib": [{"pid": p, "rss_gib": round(r / 2**30, 2), "cmd": self.cmd.get(p, "")[:90],
                                             "ppid": self.ppid.get(p)} for p, r in others.items()]}


# ---------------------------------------------------------------------------------- load driver
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
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    e2e_p50_ms: float | None
    e2e_p99_ms: float | None
    loadavg: float
    error_samples: list[str] = field(default_factory=list)


async def one_request(client: httpx.AsyncClient, url: str, body: dict, stream: bool) -> tuple[float | None, float, int]:
    t0 = time.perf_counter()
    if not stream:
        r = await client.post(url, json=body)
        r.raise_for_status()
        data = r.json()
        return None, time.perf_counter() - t0, int(data["usage"]["completion_tokens"])
    ttft = None
    tokens = 0
    async with client.stream("POST", url, json=body) as r:
        if r.status_code != 200:
            await r.aread()
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[6:]
            if payload == "[DONE]":
                break
            chunk = json.loads(payload)
            for ch in chunk.get("choices") or []:
                if ttft is None and (ch.get("delta") or {}).get("content"):
                    ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
    return ttft, time.perf_counter() - t0, tokens


async def drive(base_url: str, target: str, prompts: list[str], level: int, n: int, max_tokens: int,
                stream: bool, extra: dict) -> Result:
    url = base_url.rstrip("/") + "/v1/chat/completions"
    sem = asyncio.Semaphore(level)
    ttfts, e2es, toks, errors = [], [], [], []
    limits = httpx.Limits(max_connections=level + 4, max_keepalive_connections=level + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        async def worker(i: int):
            body = {"model": MODEL, "messages": [{"role": "user", "content": prompts[i % len(prompts)]}],
                    "max_tokens": max_tokens, "temperature": 0, "seed": 1234, **extra}
            if stream:
                body.update(stream=True, stream_options={"include_usage": True})
            async with sem:
                try:
                    ttft, e2e, tok = await one_request(client, url, body, stream)
                except Exception as exc:  # noqa: BLE001
                    errors.append(repr(exc)[:200])
                    return
                e2es.append(e2e)
                toks.append(tok)
                if ttft is not None:
                    ttfts.append(ttft)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(n)))
        wall = time.perf_counter() - t0
    ms = lambda v: None if v is None else round(v * 1e3, 1)  # noqa: E731
    ok = len(e2es)
    return Result(target, level, n, len(errors), round(wall, 2), round(ok / wall, 3), round(sum(toks) / wall, 1),
                  round(sum(toks) / ok, 1) if ok else 0.0, ms(percentile(ttfts, 50)), ms(percentile(ttfts, 99)),
                  ms(percentile(e2es, 50)), ms(percentile(e2es, 99)), round(os.getloadavg()[0], 2), errors[:3])


# mode -> (streamed?, chatgate's moderation_mode, row label). Bare vLLM has no moderation, so its
# "stream" row is the baseline for both chatgate stream rows.
MODES = {
    "nonstream": (False, None, "non-stream"),
    "stream": (True, "async", "stream"),
    "stream-buffered": (True, "buffered", "stream-buffered"),
}


def run_levels(base_url: str, name: str, modes: list[str], levels: list[int], prompts: list[str], args,
               chatgate: bool, sampler: MemorySampler | None = None) -> list[Result]:
    out = []
    modes = [m for m in modes if chatgate or MODES[m][1] != "buffered"]
    extra = {m: ({"moderation_mode": MODES[m][1]} if chatgate and MODES[m][1] else {}) for m in modes}
    # warm-up: a couple of requests in each mode (first-request compile/alloc costs are not measured)
    for mode in modes:
        asyncio.run(drive(base_url, "warmup", prompts, 2, 2, 8, MODES[mode][0], extra[mode]))
    for mode in modes:
        stream, _, label = MODES[mode]
        for level in levels:
            n = max(args.requests, level)
            if sampler:
                sampler.hold()
            r = asyncio.run(drive(base_url, f"{name} {label}", prompts, level, n, args.max_tokens, stream, extra[mode]))
            if sampler:
                sampler.sample()
            print(f"  {r.target:<24} c={level:<3} {r.req_s:7.2f} req/s {r.tok_s:8.1f} tok/s  e2e p50 {r.e2e_p50_ms} ms"
                  f"  ttft p50 {r.ttft_p50_ms} ms  errors {r.errors}  load {r.loadavg}", flush=True)
            out.append(r)
    return out


# --------------------------------------------------------------------------------------- targets
def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"not ready in {timeout}s")


def kill_orphans(pids: set[int]) -> None:
    """Our own leftover processes only (e.g. a VLLM::EngineCore re-parented to pid 1)."""
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.ppid() == 1 and p.create_time() > 0:
                p.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def bench_vllm(args, prompts, model_dir: str) -> dict:
    from tests.live import free_port

    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="nobind", HF_HUB_OFFLINE="1")
    if args.vllm_omp_threads > 0:  # chatgate's Generator actor (num_cpus: 1) gets OMP_NUM_THREADS=1 from Ray
        env["OMP_NUM_THREADS"] = str(args.vllm_omp_threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    log = open(args.log_dir / "vllm.log", "w")
    sampler = MemorySampler()
    sampler.start()
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
                             "--served-model-name", MODEL, "--dtype", "float32", "--enforce-eager",
                             "--max-model-len", "2048", "--port", str(port), "--host", "127.0.0.1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/v1/models", proc, 300)
        ready_s = time.monotonic() - t0
        print(f"bare vLLM ready in {ready_s:.1f}s (port {port})", flush=True)
        results = run_levels(base, "bare vLLM", args.modes, args.levels, prompts, args, chatgate=False, sampler=sampler)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        sampler.stop()
        members = sampler.members({proc.pid}, [])
        kill_orphans(members)
    return {"ready_s": round(ready_s, 1), "memory": sampler.peak(members), "results": [asdict(r) for r in results]}


def scrape_stage_means(metrics_url: str) -> dict:
    """Mean per chatgate stage (ms) from the Ray metrics endpoint, over the whole run."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(metrics_url, timeout=10).text
    except httpx.HTTPError:
        return {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if "chatgate_stage_latency_seconds" not in fam.name and "chatgate_time_to_first_token" not in fam.name:
            continue
        for s in fam.samples:
            key = s.labels.get("stage") or f"ttft[{s.labels.get('mode')}]"
            if s.name.endswith("_sum"):
                sums[key] = sums.get(key, 0) + s.value
            elif s.name.endswith("_count"):
                counts[key] = counts.get(key, 0) + s.value
    return {k: {"mean_ms": round(sums[k] / counts[k] * 1e3, 2), "count": int(counts[k])}
            for k in sums if counts.get(k)}


def bench_chatgate(args, prompts) -> dict:
    from tests.live import start_live_app

    sampler = MemorySampler()
    sampler.start()
    t0 = time.monotonic()
    app = None
    run_pid, ray_port, redis_port = -1, "-1", -1
    try:
        app = start_live_app(timeout_s=420)
        ready_s = time.monotonic() - t0
        print(f"chatgate ready in {ready_s:.1f}s ({app.base_url})", flush=True)
        results = run_levels(app.base_url, "chatgate", args.modes, args.levels, prompts, args, chatgate=True,
                             sampler=sampler)
        time.sleep(6)  # let the Ray metrics exporter catch up
        stages = scrape_stage_means(app.metrics_url)
    finally:
        if app is not None:
            ray_port, run_pid, redis_port = app.env["CHATGATE_RAY_PORT"], app.proc.pid, app.redis.port
            app.stop()
            serve_mode = serve_mode_of(app.log_path, app.env)
        sampler.stop()
    members = sampler.members({run_pid}, [f":{ray_port} ", f"_port={ray_port} ", f"--port={ray_port} ",
                                          f"--port {ray_port} ", f"--port {redis_port} "])
    kill_orphans(members)
    return {"ready_s": round(ready_s, 1), "memory": sampler.peak(members), "stages": stages, "serve_mode": serve_mode,
            "results": [asdict(r) for r in results]}


def serve_mode_of(log_path: Path, env: dict[str, str]) -> str:
    """Which Ray Serve data path the run used, from the ServeController's start-up lines and the
    environment tools/run.sh was started with."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if "Throughput optimized Ray Serve enabled" not in text:
        return "classic (Python proxy, Ray actor calls)"
    flags = re.findall(r"\u2022 ([^\n\x1b]+)", text)
    # tools/run.sh turns HAProxy on unless the caller's environment says 0.
    ingress = "Serve proxy" if env.get("RAY_SERVE_ENABLE_HA_PROXY") == "0" else "HAProxy ingress"
    return f"throughput-optimized, {ingress}: " + "; ".join(dict.fromkeys(f.strip() for f in flags))


# ---------------------------------------------------------------------------------------- report
def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def render(report: dict) -> str:
    rows = []
    for key in ("vllm", "chatgate"):
        rows += report.get(key, {}).get("results", [])
    lines = ["| target | conc | req/s | out tok/s | TTFT p50 ms | TTFT p99 ms | e2e p50 ms | e2e p99 ms | tok/req | err | load1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['level']} | {r['req_s']:.2f} | {r['tok_s']:.1f} | {fmt(r['ttft_p50_ms'])} | "
                     f"{fmt(r['ttft_p99_ms'])} | {fmt(r['e2e_p50_ms'])} | {fmt(r['e2e_p99_ms'])} | {r['tok_per_req']:.1f} | "
                     f"{r['errors']} | {r['loadavg']:.2f} |")
    by = {(r["target"], r["level"]): r for r in rows}
    levels = sorted({r["level"] for r in rows})
    ratio_lines = ["", "| chatgate / bare | conc | req/s ratio | tok/s ratio | TTFT p50 Δ ms | e2e p50 ratio | e2e p50 Δ ms |",
                   "|---|---:|---:|---:|---:|---:|---:|"]
    for mode in ("non-stream", "stream", "stream-buffered"):
        for lv in levels:
            base_mode = "stream" if mode == "stream-buffered" else mode
            b, c = by.get((f"bare vLLM {base_mode}", lv)), by.get((f"chatgate {mode}", lv))
            if not b or not c:
                continue
            rr = c["req_s"] / b["req_s"] if b["req_s"] else None
            tr = c["tok_s"] / b["tok_s"] if b["tok_s"] else None
            dt = (c["ttft_p50_ms"] - b["ttft_p50_ms"]) if c["ttft_p50_ms"] is not None and b["ttft_p50_ms"] is not None else None
            er = c["e2e_p50_ms"] / b["e2e_p50_ms"] if b["e2e_p50_ms"] else None
            de = c["e2e_p50_ms"] - b["e2e_p50_ms"] if b["e2e_p50_ms"] is not None else None
            ratio_lines.append(f"| {mode} | {lv} | {fmt(rr, 3)} | {fmt(tr, 3)} | {fmt(dt)} | {fmt(er, 3)} | {fmt(de)} |")
    extra = [""]
    for key, label in (("vllm", "bare vLLM"), ("chatgate", "chatgate")):
        t = report.get(key)
        if t:
            m = t["memory"]
            extra.append(f"- {label}: launch -> ready {t['ready_s']} s; peak memory: RSS sum {m['peak_rss_gib']} GiB, "
                         f"PSS sum {m['peak_pss_gib']} GiB over {m['processes']} processes")
    if report.get("chatgate", {}).get("serve_mode"):
        extra.append(f"- chatgate Serve data path: {report['chatgate']['serve_mode']}")
    if report.get("chatgate", {}).get("stages"):
        extra.append("- chatgate stage means over the run (Ray metrics): " + ", ".join(
            f"{k} {v['mean_ms']} ms (n={v['count']})" for k, v in sorted(report["chatgate"]["stages"].items())))
    return "\n".join(lines + ratio_lines + extra)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--requests", type=int, default=16, help="requests per level (at least the level)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompts", default="prompts_benign.txt", help="prompt file (loadtest/ relative)")
    ap.add_argument("--targets", default="vllm,chatgate")
    ap.add_argument("--modes", default="nonstream,stream,stream-buffered", help=f"any of {','.join(MODES)}")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--vllm-omp-threads", type=int, default=1,
                    help="OMP_NUM_THREADS for bare vLLM; default 1 = what Ray gives chatgate's Generator "
                         "(num_cpus: 1), so both engines run alike; 0 = unset (torch default)")
    ap.add_argument("--skip-micro", action="store_true", help="skip the classifier micro-benchmark")
    ap.add_argument("--json", type=Path, default=ROOT / "tools" / "bench" / "results" / "latest.json")
    args = ap.parse_args(argv)
    args.levels = [int(x) for x in args.levels.split(",") if x]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        ap.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.log_dir = args.json.parent
    prompts = load_prompts(args.prompts)
    model_dir = args.model_dir or str(Path(os.environ.get("CHATGATE_CACHE", Path.home() / ".cache/chatgate"))
                                      / "models" / "smollm2-135m-instruct")
    t_start = time.monotonic()
    report: dict = {"machine": machine_info(), "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "command": "python -m tools.bench " + " ".join(sys.argv[1:] if argv is None else argv)}
    print(json.dumps(report["machine"]), flush=True)
    if not args.skip_micro:
        mb = subprocess.run([sys.executable, "-m", "tools.moderation.bench", "--n", "500", "--seconds", "2"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
        report["classifier_micro"] = (mb.stdout + mb.stderr).strip()
        print(report["classifier_micro"], flush=True)
    if "vllm" in targets:
        report["vllm"] = bench_vllm(args, prompts, model_dir)
    if "chatgate" in targets:
        report["chatgate"] = bench_chatgate(args, prompts)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["total_s"] = round(time.monotonic() - t_start, 1)
    table = render(report)
    report["table"] = table
    args.json.write_text(json.dumps(report, indent=2))
    m = report["machine"]
    print(f"\nMachine: {m['cpu_model']}, {m['usable_cpus']} usable CPUs ({m['physical_cores']} physical cores), "
          f"{m['mem_gib']} GiB, vLLM {m['vllm']}; load avg start {m['loadavg_start']} end {m['loadavg_end']}; "
          f"total {report['total_s']} s")
    print(f"max_tokens={args.max_tokens}, requests/level=max({args.requests}, level), prompts={args.prompts}\n")
    print(table)
    print(f"\n(JSON: {args.json})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
