"""The real system end to end: Ray Serve + vLLM (SmolLM2) + ONNX classifier + Redis templates.

One app is started for the whole session (tests/live.py); tests that change its configuration
restore it before they finish.
"""
from __future__ import annotations

import copy
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from openai import OpenAI

from tools import sse

pytestmark = pytest.mark.slow

BENIGN = "Explain how a classification algorithm works"
ABUSIVE = "I want to cut myself tonight"
MODEL = "smollm2-135m-instruct"


def chat(app, content: str, headers: dict | None = None, **kw) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 48, "temperature": 0, "seed": 7, **kw}
    return httpx.post(f"{app.base_url}/v1/chat/completions", json=body, timeout=120, headers=headers)


def sse_chunks(app, content: str, **kw) -> list[dict]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 48, "temperature": 0,
            "seed": 7, "stream": True, **kw}
    with httpx.stream("POST", f"{app.base_url}/v1/chat/completions", json=body, timeout=120) as resp:
        assert resp.status_code == 200
        return list(sse.events(resp.iter_lines()))


def text_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def engine_stats(app) -> dict:
    return httpx.get(f"{app.base_url}/admin/engine", timeout=30).json()


def wait_until(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def test_requests_take_serves_high_throughput_path(live_app):
    """tools/run.sh's data path: HAProxy owns the HTTP port, direct ingress and gRPC are on."""
    port = int(live_app.base_url.rsplit(":", 1)[1])
    owners = {c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert owners and all(psutil.Process(pid).name() == "haproxy" for pid in owners), owners
    log = live_app.log_path.read_text(errors="replace")
    assert "Direct ingress enabled" in log and "gRPC communication enabled" in log
    assert httpx.get(f"{live_app.base_url}/healthz", timeout=10).status_code == 200


def test_benign_question_gets_a_model_answer(live_app):
    resp = chat(live_app, BENIGN)
    assert resp.status_code == 200
    body = resp.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] in ("stop", "length")
    assert len(choice["message"]["content"].split()) >= 5
    assert body["usage"]["completion_tokens"] > 0 and "chatgate_moderation" not in body


def test_abusive_prompt_gets_the_template_and_its_generation_is_aborted(live_app):
    """Generation overlaps the input check; a block aborts it at once and nothing generated leaks."""
    body = chat(live_app, ABUSIVE, max_tokens=400).json()
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["chatgate_moderation"]["stage"] == "input"
    assert "self-harm" in body["chatgate_moderation"]["categories"]
    assert "crisis line" in body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 0
    chunks = sse_chunks(live_app, ABUSIVE, max_tokens=400)
    assert text_of(chunks) == body["choices"][0]["message"]["content"]
    assert wait_until(lambda: engine_stats(live_app)["unfinished_requests"] == 0, timeout=3)


def test_out_of_range_values_never_reach_the_engine(live_app):
    for extra in ({"seed": 1180591620717411303424}, {"n": 50}, {"stop": ["x"] * 9}):
        resp = chat(live_app, BENIGN, **extra)
        assert resp.status_code == 400 and resp.json()["error"]["param"] in ("seed", "n", "stop"), resp.text
    resp = httpx.post(f"{live_app.base_url}/v1/moderations", json={"input": "x" * 2_000_000}, timeout=30)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
    assert engine_stats(live_app)["unfinished_requests"] == 0


def test_n_choices_and_client_request_ids(live_app):
    resp = chat(live_app, BENIGN, n=2, temperature=0.8, max_tokens=24, headers=None)
    body = resp.json()
    assert [c["index"] for c in body["choices"]] == [0, 1] and all(c["message"]["content"] for c in body["choices"])
    ids = set()
    for _ in range(2):
        r = httpx.post(f"{live_app.base_url}/v1/chat/completions", timeout=120, headers={"x-request-id": "same-id"},
                       json={"messages": [{"role": "user", "content": BENIGN}], "max_tokens": 4})
        assert r.status_code == 200 and r.headers["x-request-id"] == "same-id"
        ids.add(r.json()["id"])
    assert len(ids) == 2  # never the engine id: two requests with one client id do not collide


def test_the_operator_owns_the_stream_mode(live_app):
    resp = chat(live_app, BENIGN, stream=True, moderation_mode="async")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "moderation_mode_not_allowed"


def test_stream_equals_non_streamed_answer_for_the_same_seed(live_app):
    full = chat(live_app, BENIGN).json()["choices"][0]["message"]["content"]
    chunks = sse_chunks(live_app, BENIGN, stream_options={"include_usage": True})
    assert text_of(chunks) == full
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_the_openai_client_works(live_app):
    client = OpenAI(base_url=f"{live_app.base_url}/v1", api_key="unused", timeout=120)
    assert [m.id for m in client.models.list()] == [MODEL]
    done = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": BENIGN}], max_tokens=24, temperature=0)
    assert done.choices[0].message.content
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": BENIGN}], max_tokens=24,
                                            temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == done.choices[0].message.content
    mod = client.moderations.create(input=[BENIGN, ABUSIVE])
    assert [r.flagged for r in mod.results] == [False, True]


@pytest.mark.parametrize("body,status", [
    ({"messages": []}, 400),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**6}, 400),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, 400),
    ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404),
])
def test_bad_inputs_get_4xx_in_openai_shape(live_app, body, status):
    resp = httpx.post(f"{live_app.base_url}/v1/chat/completions", json=body, timeout=30)
    assert resp.status_code == status and resp.json()["error"]["message"]


def test_malformed_json_and_too_long_prompt(live_app):
    resp = httpx.post(f"{live_app.base_url}/v1/chat/completions", content=b"{oops", headers={"content-type": "application/json"}, timeout=30)
    assert resp.status_code == 400
    long_prompt = "Tell me about cats and dogs. " * 400  # ~2,800 tokens > max_model_len 2048
    for stream in (False, True):
        resp = chat(live_app, long_prompt, stream=stream)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "context_length_exceeded"
    assert httpx.get(f"{live_app.base_url}/healthz", timeout=10).status_code == 200  # replica still up


def test_client_disconnect_aborts_generation(live_app):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "max_tokens": 400, "stream": True}
    aborted_before = engine_stats(live_app)["requests_aborted"]
    with httpx.stream("POST", f"{live_app.base_url}/v1/chat/completions", json=body, timeout=120) as resp:
        for i, _ in enumerate(resp.iter_lines()):
            if i > 6:
                break  # leave mid-stream
    # HAProxy notices the gone client only when a write fails: with SSE comments every
    # streaming.keepalive_s (1 s) the abort came ~1.8 s after the client left (python -m
    # tools.bench.disconnect; ~7 s with 15 s). The Generator counts a stream that ended before the
    # engine did, so the test tells an abort from an answer that ended on its own.
    assert wait_until(lambda: engine_stats(live_app)["requests_aborted"] == aborted_before + 1, timeout=10)
    assert wait_until(lambda: engine_stats(live_app)["unfinished_requests"] == 0, timeout=3)


def _with_output_threshold(app, thresholds: dict[str, float], mode: str | None = None) -> dict:
    config = copy.deepcopy(app.config)
    for d in config["applications"][0]["deployments"]:
        if d["name"] == "OutputModeration":
            d["user_config"]["thresholds"] = thresholds
    return config


def test_output_block_for_real_in_buffered_mode(live_app):
    """Force output flags by a threshold of 0 on one category (input moderation is unaffected)."""
    live_app.redeploy(_with_output_threshold(live_app, {"violence": 0.0}))
    try:
        assert wait_until(lambda: chat(live_app, BENIGN).json()["choices"][0]["finish_reason"] == "content_filter", timeout=60, interval=1)
        body = chat(live_app, BENIGN).json()
        assert body["chatgate_moderation"]["stage"] == "output"
        assert body["chatgate_moderation"]["template"]["category"] == "violence"
        before = engine_stats(live_app)
        chunks = sse_chunks(live_app, BENIGN, max_tokens=200)
        template = body["choices"][0]["message"]["content"]
        assert text_of(chunks) == template  # buffered: nothing of the flagged window reached the client
        assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"
        assert wait_until(lambda: engine_stats(live_app)["unfinished_requests"] == 0, timeout=3)
        assert engine_stats(live_app)["requests_started"] == before["requests_started"] + 1
    finally:
        live_app.redeploy(live_app.config)
        wait_until(lambda: "chatgate_moderation" not in chat(live_app, BENIGN).json(), timeout=60, interval=1)


def test_template_edit_through_the_cli_changes_the_next_blocked_answer(live_app):
    new_text = f"Edited template {time.time_ns()}"
    subprocess.run([sys.executable, "-m", "services.cli", "templates", "--redis-url", f"{live_app.redis.url}/0",
                    "set", "self-harm", "en", new_text], check=True, timeout=30)
    assert wait_until(lambda: chat(live_app, ABUSIVE).json()["choices"][0]["message"]["content"] == new_text, timeout=10)


def test_metrics_show_stage_histograms(live_app):
    chat(live_app, BENIGN)
    chat(live_app, ABUSIVE)
    sse_chunks(live_app, BENIGN, max_tokens=8)

    def scrape():
        text = httpx.get(live_app.metrics_url, timeout=10).text
        return text if "ray_chatgate_stage_latency_seconds_bucket" in text else None

    text = wait_until(scrape, timeout=60, interval=2)
    assert text, "stage histograms never appeared on the Ray metrics port"
    for stage in ("input_moderation", "generation", "output_moderation", "template"):
        assert f'stage="{stage}"' in text
    assert wait_until(lambda: "ray_chatgate_time_to_first_token_seconds_bucket" in httpx.get(live_app.metrics_url, timeout=10).text,
                      timeout=30, interval=2)
    assert 'outcome="input_blocked"' in httpx.get(live_app.metrics_url, timeout=10).text


def test_redis_down_still_answers_with_a_template(live_app):
    """Runs last among the template tests: it stops the app's Redis (and restarts it)."""
    live_app.redis.stop()
    try:
        # Replicas trust their template cache for cache_ttl_s (2 s), then fall back to built-ins.
        def blocked_with_builtin():
            r = chat(live_app, ABUSIVE)
            assert r.status_code == 200
            return r if r.json()["chatgate_moderation"]["template"]["source"] == "builtin" else None

        resp = wait_until(blocked_with_builtin, timeout=15, interval=0.5)
        assert resp is not None
        body = resp.json()
        assert body["choices"][0]["finish_reason"] == "content_filter"
        assert body["chatgate_moderation"]["template"]["source"] == "builtin"
        assert httpx.get(f"{live_app.base_url}/readyz", timeout=30).json()["templates"] == "builtin_fallback"
    finally:
        live_app.redis.start()
