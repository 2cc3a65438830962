"""The fuzz run's verdicts and the engine check, without a server (httpx.get replaced)."""
from __future__ import annotations

import httpx

from tools.faults import fuzz


def test_engine_must_settle_to_zero_unfinished(monkeypatch):
    answers = iter([3, 1, 0])
    monkeypatch.setattr(fuzz.time, "sleep", lambda s: None)
    monkeypatch.setattr(fuzz.httpx, "get", lambda url, timeout: httpx.Response(
        200, json={"unfinished_requests": next(answers)}, request=httpx.Request("GET", url)))
    assert fuzz.wait_engine_idle("http://x", 60)[0] == 0


def test_unreachable_engine_is_not_idle(monkeypatch):
    def down(url, timeout):
        raise httpx.ConnectError("refused")

    monkeypatch.setattr(fuzz.httpx, "get", down)
    assert fuzz.engine_unfinished("http://x") is None


def test_targets_need_no_5xx_and_an_idle_engine():
    ok = {"server_errors": 0, "exit_code": 0, "engine_unfinished_after": 0, "seconds": 1, "engine_settle_s": 0,
          "summary": [], "reproduce": []}
    assert set(fuzz.targets(ok).values()) == {"PASS"}
    bad = dict(ok, server_errors=2, exit_code=1, engine_unfinished_after=1, reproduce=["curl -X POST ..."])
    assert set(fuzz.targets(bad).values()) == {"MISS"}
    assert "reproduce: curl" in fuzz.render(bad)
