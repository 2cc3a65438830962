"""The live-system launcher for integration tests. Its code lives in tools/launch.py (the benchmark
and the fault suite start the same system, and tools never import tests); edit start/stop there."""
from tools.launch import ROOT, LiveApp, RedisServer, free_port, redis_server_binary, start_live_app  # noqa: F401

__all__ = ["ROOT", "LiveApp", "RedisServer", "free_port", "redis_server_binary", "start_live_app"]
