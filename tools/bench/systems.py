"""The two systems under test, each started, driven and stopped in turn (never both at once):
bare vLLM's OpenAI server with chatgate's engine settings, and chatgate through tools/launch.py
(tools/run.sh with its own Redis and free ports, no Celery worker)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from loadtest.common import MODEL
from services.generation.cpu_cores import DEDICATED
from services.generation.engine import resolve_dtype, spin_sleep_env  # the Generator's own choice for `auto`
from tools.bench.load import run_levels
from tools.bench.sampler import MemorySampler

ROOT = Path(__file__).resolve().parents[2]


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


def engine_settings():
    """chatgate's Generator settings as `serve run deployments.yaml` resolves them (the file's args
    over CHATGATE_* environment variables): bare vLLM gets the same."""
    import yaml

    from services.config import load_settings

    app = yaml.safe_load((ROOT / "deployments.yaml").read_text())["applications"][0]
    return load_settings(app.get("args") or {}).generator


def vllm_command(gen, port: int) -> list[str]:
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", gen.model,
           "--served-model-name", MODEL, "--dtype", resolve_dtype(gen.dtype), "--max-model-len", str(gen.max_model_len),
           "--stream-interval", str(gen.stream_interval), "--port", str(port), "--host", "127.0.0.1"]
    return cmd + (["--enforce-eager"] if gen.enforce_eager else [])


def bench_vllm(args, prompts, model_dir: str | None) -> dict:
    from tools.launch import free_port

    gen = engine_settings()
    if model_dir:
        gen.model = model_dir
    port = free_port()
    # "dedicated" keeps chatgate's own processes off the engine's core; bare vLLM has none, and
    # pinning its worker only cost it 3-8 % of throughput here (experiment G): it runs unpinned.
    bind = "nobind" if gen.cpu_omp_threads_bind == DEDICATED else gen.cpu_omp_threads_bind
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=str(gen.cpu_kvcache_gib),
               VLLM_CPU_OMP_THREADS_BIND=bind, HF_HUB_OFFLINE="1")
    env.update(spin_sleep_env(gen))  # the same engine: chatgate's vLLM plugin is in this environment too
    threads = gen.cpu_threads if args.vllm_omp_threads is None else args.vllm_omp_threads
    if threads > 0:  # the Generator sets OMP_NUM_THREADS=cpu_threads in its replica
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    log = open(args.log_dir / "vllm.log", "w")
    sampler = MemorySampler()
    sampler.start()
    t0 = time.monotonic()
    print(f"bare vLLM: dtype {resolve_dtype(gen.dtype)}, OMP threads {threads or 'unset'}, max_model_len {gen.max_model_len}, "
          f"engine spin sleep {gen.cpu_spin_sleep_ms} ms", flush=True)
    proc = subprocess.Popen(vllm_command(gen, port), env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/v1/models", proc, 300)
        ready_s = time.monotonic() - t0
        print(f"bare vLLM ready in {ready_s:.1f}s (port {port})", flush=True)
        results = run_levels(base, "bare vLLM", args.modes, args.levels, prompts, args.requests, args.max_tokens,
                             chatgate=False, sampler=sampler)
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
    return {"ready_s": round(ready_s, 1), "memory": sampler.peak(members), "results": results}


def scrape_stage_means(metrics_url: str) -> dict:
    """Mean per chatgate stage (ms) from the Ray metrics endpoint, over the whole run."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(metrics_url, timeout=10).text
    except httpx.HTTPError:
        return {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}  # cumulative counts per upper bound
    wanted = ("chatgate_stage_latency_seconds", "chatgate_time_to_first_token", "chatgate_event_loop_lag")
    for fam in text_string_to_metric_families(text):
        if not any(w in fam.name for w in wanted):
            continue
        for s in fam.samples:
            key = ("router_loop_lag" if "event_loop_lag" in fam.name
                   else s.labels.get("stage") or f"ttft[{s.labels.get('mode')}]")
            if s.name.endswith("_sum"):
                sums[key] = sums.get(key, 0) + s.value
            elif s.name.endswith("_count"):
                counts[key] = counts.get(key, 0) + s.value
            elif s.name.endswith("_bucket"):
                bound = buckets.setdefault(key, {})
                le = float(s.labels["le"])
                bound[le] = bound.get(le, 0) + s.value
    out = {k: {"mean_ms": round(sums[k] / counts[k] * 1e3, 2), "count": int(counts[k])} for k in sums if counts.get(k)}
    for k, v in out.items():  # p99 as the bucket bound it falls under (an upper bound)
        bounds = sorted(buckets.get(k, {}).items())
        v["p99_le_ms"] = next((round(le * 1e3, 1) for le, c in bounds if c >= 0.99 * v["count"]), None)
    return out


def bench_chatgate(args, prompts) -> dict:
    from tools.launch import start_live_app

    sampler = MemorySampler()
    sampler.start()
    t0 = time.monotonic()
    app = None
    run_pid, ray_port, redis_port = -1, "-1", -1
    try:
        # The operator lets the benchmark's client pick async streams (the default allows only buffered),
        # and admission control lets every level's requests in (bare vLLM has none; the bench measures
        # what the pipeline costs at a given concurrency, the fault suite measures admission).
        top = max(args.levels)
        app = start_live_app(timeout_s=420, user_config={"Router": {"streaming": {"allow_client_async": True}}},
                             app_args={"api": {"admission": {"max_active": max(top, 8), "max_waiting": top}},
                                       **getattr(args, "app_args", {})})
        ready_s = time.monotonic() - t0
        print(f"chatgate ready in {ready_s:.1f}s ({app.base_url})", flush=True)
        results = run_levels(app.base_url, "chatgate", args.modes, args.levels, prompts, args.requests,
                             args.max_tokens, chatgate=True, sampler=sampler)
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
            "results": results}


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
