import os

import pytest

os.environ.setdefault("LC_ALL", "C.UTF-8")


@pytest.fixture(scope="session")
def live_app():
    """The real system (Ray Serve + vLLM + ONNX classifier + its own Redis), started once per session."""
    from tests.live import start_live_app

    app = start_live_app()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def redis_server():
    """A throwaway Redis on a free port."""
    from tests.live import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
