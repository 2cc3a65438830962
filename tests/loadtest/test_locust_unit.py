"""Fast checks of the load test's helpers and locustfile (no server needed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.common import DEFAULT_MIX, USER_CLASSES, check_limits, load_prompts, parse_mix, percentile

ROOT = Path(__file__).resolve().parents[2]


def test_prompt_files_load_and_skip_comments():
    for name in ("prompts_benign.txt", "prompts_abusive.txt", "prompts_moderation.txt", "prompts_distinct.txt"):
        prompts = load_prompts(name)
        assert prompts and all(p and not p.startswith("#") for p in prompts)


def test_benign_load_sends_new_texts():
    """The default benign set is large and distinct, so the checks' embedding cache rarely hits."""
    # In a child: importing locust monkey-patches the standard library (gevent).
    out = subprocess.run([sys.executable, "-c", "import loadtest.locustfile as f; print(f.DEFAULT_PROMPTS['benign'])"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "prompts_distinct.txt"
    prompts = load_prompts("prompts_distinct.txt")
    assert len(prompts) >= 500 and len(set(prompts)) == len(prompts)


def test_parse_mix():
    assert parse_mix(None) == {k: USER_CLASSES[k][1] for k in DEFAULT_MIX.split(",")}
    assert "jobs" not in parse_mix("")
    assert parse_mix("benign:3, stream") == {"benign": 3, "stream": USER_CLASSES["stream"][1]}
    assert set(parse_mix("all")) == set(USER_CLASSES)
    assert parse_mix("benign,jobs:0") == {"benign": USER_CLASSES["benign"][1]}
    with pytest.raises(ValueError):
        parse_mix("nope")
    with pytest.raises(ValueError):
        parse_mix("jobs:0")


def test_check_limits():
    ok = dict(requests=10, fail_ratio=0.0, p95_ms=100.0)
    assert check_limits(**ok, max_fail_ratio=0.01, max_p95_ms=200) == []
    assert check_limits(**ok, max_fail_ratio=-1, max_p95_ms=0) == []
    assert "error rate" in check_limits(requests=10, fail_ratio=0.5, p95_ms=1, max_fail_ratio=0.1, max_p95_ms=0)[0]
    assert "p95" in check_limits(**ok, max_fail_ratio=None, max_p95_ms=50)[0]
    assert "only 0 requests" in check_limits(requests=0, fail_ratio=0, p95_ms=None, max_fail_ratio=None,
                                            max_p95_ms=None)[0]


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([0, 10], 99) == pytest.approx(9.9)


def _list_users(env_mix: str | None, *extra: str) -> list[str]:
    env = None
    if env_mix is not None:
        import os

        env = dict(os.environ, LOADTEST_MIX=env_mix)
    out = subprocess.run([sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--list", *extra],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [ln.strip() for ln in out.stdout.splitlines() if ln.startswith("    ")]


def test_locustfile_user_mix_is_selectable():
    assert _list_users(None) == ["BenignChatUser", "StreamingChatUser", "AbusiveChatUser", "ModerationUser"]
    assert _list_users("all")[-1] == "JobsUser"
    assert _list_users(None, "--mix", "abusive,moderation") == ["AbusiveChatUser", "ModerationUser"]


def test_headless_run_against_nothing_fails_the_limits(tmp_path):
    """No server: every request fails, so the quitting hook must make locust exit non-zero."""
    out = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless", "-H", "http://127.0.0.1:9",
         "-u", "2", "-r", "2", "-t", "3s", "--mix", "moderation", "--think-time", "0.1",
         "--max-fail-ratio", "0.05", "--csv", str(tmp_path / "run"), "--only-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "LOADTEST LIMITS BROKEN" in out.stderr
    assert (tmp_path / "run_stats.csv").exists()
