"""The real FastAPI app over the fake backend, wired as the Router wires it (the pipeline's
answer hook feeds the recorder; the web router is included), with a real PostgreSQL; optionally
served by uvicorn on a free port (for the browser)."""
from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from services.api.app import create_app
from services.config import Settings
from services.feedback.metrics import FeedbackMetrics
from services.feedback.recorder import CompletionRecorder
from services.pipeline.hooks import answer_hook
from services.web import create_web_routes
from tests.pipeline.fakes import FakeBackend, FakeStages
from tools.launch import free_port

KEYS = ("key-alice", "key-bob")


class WebApp:
    def __init__(self, dsn: str, *, keys: tuple[str, ...] = (), store_text: bool = True,
                 stages: FakeStages | None = None, lookup_wait_s: float = 0.3, feedback_store: Any = None,
                 **overrides: Any):
        self.backend = FakeBackend(stages or FakeStages(), api={"keys": ",".join(keys)},
                                   audit={"enabled": False, "dsn": dsn, "store_text": store_text},
                                   feedback={"dsn": dsn, "lookup_wait_s": lookup_wait_s}, **overrides)
        self.settings: Settings = self.backend.settings
        self.registry = CollectorRegistry()
        self.metrics = FeedbackMetrics("prometheus", registry=self.registry)
        self.recorder = CompletionRecorder(self.settings, metrics=self.metrics)
        self.backend.pipeline.on_answer = answer_hook(self.settings, self.recorder)  # as deployments/router.py
        router = create_web_routes(self.settings, self.recorder, store=feedback_store)
        self.app = create_app(self.backend, extra_routers=[router])

    def count(self, **labels: str) -> float:
        return self.registry.get_sample_value("chatgate_feedback_total", labels) or 0.0

    def close(self) -> None:
        self.recorder.close()


class Served:
    """uvicorn in a thread (the app's async code runs on the server's own loop)."""

    def __init__(self, app: Any):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)
