"""HTTP surface over a fake backend: OpenAI shapes, SSE framing, errors, the official client."""
import asyncio
import json

import httpx
import pytest
from openai import AsyncOpenAI

from services.api.app import create_app
from tools import sse
from tests.pipeline.fakes import FakeBackend, FakeStages


@pytest.fixture
def backend():
    return FakeBackend(FakeStages())


@pytest.fixture
async def client(backend):
    app = create_app(backend)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def assert_openai_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["message"]
    return err


@pytest.mark.parametrize("body,param", [
    ({"messages": []}, "messages"),
    ({}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": "   "}]}, "messages"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "lots"}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 7}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}, "max_tokens"),
])
async def test_bad_requests_get_400_in_openai_shape(client, body, param):
    err = assert_openai_error(await client.post("/v1/chat/completions", json=body), 400)
    assert err["param"].startswith(param)


async def test_malformed_json_is_a_400(client):
    resp = await client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert_openai_error(resp, 400)


async def test_unknown_model_is_a_404(client):
    resp = await client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})
    assert assert_openai_error(resp, 404)["code"] == "model_not_found"


async def test_sse_stream_is_openai_framed(client):
    async with client.stream("POST", "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in resp.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


async def test_language_comes_from_accept_language(client):
    resp = await client.post("/v1/chat/completions", headers={"accept-language": "fr-CH, fr;q=0.9, en;q=0.8"},
                             json={"messages": [{"role": "user", "content": "you idiot"}]})
    assert resp.json()["chatgate_moderation"]["template"]["language"] == "fr"


async def test_without_language_hints_the_template_follows_the_language_the_user_wrote_in(client):
    resp = await client.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "Du bist wirklich ein Idiot, und niemand will mit dir reden."}]})
    assert resp.json()["chatgate_moderation"]["template"]["language"] == "de"
    resp = await client.post("/v1/chat/completions", headers={"accept-language": "es"}, json={"messages": [
        {"role": "user", "content": "Du bist wirklich ein Idiot, und niemand will mit dir reden."}]})
    assert resp.json()["chatgate_moderation"]["template"]["language"] == "es"


async def test_moderations_models_health(client):
    resp = await client.post("/v1/moderations", json={"input": ["hello", "I want to cut myself"]})
    results = resp.json()["results"]
    assert [r["flagged"] for r in results] == [False, True]
    assert results[1]["categories"]["self-harm"] is True
    assert (await client.get("/v1/models")).json()["data"][0]["id"] == "smollm2-135m-instruct"
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).json()["ready"] is True
    assert_openai_error(await client.post("/v1/moderations", json={"input": []}), 400)


async def test_the_official_openai_client_works(backend):
    app = create_app(backend)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    oai = AsyncOpenAI(base_url="http://t/v1", api_key="unused", http_client=http)
    done = await oai.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": "hi"}])
    assert done.choices[0].message.content == FakeStages().answer
    stream = await oai.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == FakeStages().answer
    blocked = await oai.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": "you idiot"}])
    assert blocked.choices[0].finish_reason == "content_filter"
    mod = await oai.moderations.create(input="I want to cut myself")
    assert mod.results[0].flagged
    await http.aclose()


async def test_api_keys_are_enforced_when_configured():
    app = create_app(FakeBackend(FakeStages(), api={"keys": "k1, k2"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        assert_openai_error(await c.post("/v1/chat/completions", json=body), 401)
        assert_openai_error(await c.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer nope"}), 401)
        assert (await c.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer k2"})).status_code == 200
        assert (await c.get("/healthz")).status_code == 200


async def test_client_request_ids_are_correlation_ids_never_engine_ids(backend, client):
    body = {"messages": [{"role": "user", "content": "hi"}]}
    ids = []
    for _ in range(2):  # the same client id twice must not collide inside the engine
        resp = await client.post("/v1/chat/completions", json=body, headers={"x-request-id": "job-42-0"})
        ids.append(resp.json()["id"])  # (Ray Serve echoes X-Request-ID itself; tests/system checks it)
    assert ids[0] != ids[1] and all(i.startswith("chatcmpl-") for i in ids)
    stages = backend.pipeline.stages
    assert len({r.request_id for r in stages.requests}) == len(stages.requests)


@pytest.mark.parametrize("extra,param", [
    ({"seed": 2**63}, "seed"),
    ({"seed": 1180591620717411303424}, "seed"),
    ({"seed": -1}, "seed"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": ["x" * 65]}, "stop"),
    ({"stop": [""]}, "stop"),
    ({"n": 5}, "n"),
    ({"n": 0}, "n"),
])
async def test_out_of_range_values_are_400(client, extra, param):
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    err = assert_openai_error(await client.post("/v1/chat/completions", json=body), 400)
    assert err["param"].startswith(param)


async def test_size_limits_are_enforced():
    backend = FakeBackend(FakeStages(), api={"limits": {"max_body_bytes": 2000, "max_messages": 3,
                                                        "max_message_chars": 100, "max_moderation_chars": 50}})
    app = create_app(backend)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        big = {"messages": [{"role": "user", "content": "x" * 5000}]}
        err = assert_openai_error(await c.post("/v1/chat/completions", json=big), 413)
        assert err["code"] == "request_too_large"
        many = {"messages": [{"role": "user", "content": "hi"}] * 4}
        assert assert_openai_error(await c.post("/v1/chat/completions", json=many), 400)["param"] == "messages"
        long = {"messages": [{"role": "user", "content": "y" * 101}]}
        assert assert_openai_error(await c.post("/v1/chat/completions", json=long), 400)["param"] == "messages.0.content"
        assert_openai_error(await c.post("/v1/moderations", json={"input": "z" * 51}), 400)

        async def endless():  # a chunked body without a length is cut off too
            for _ in range(100):
                yield b"x" * 100

        resp = await c.post("/v1/chat/completions", content=endless(), headers={"content-type": "application/json"})
        assert_openai_error(resp, 413)


async def test_n_choices_come_back_each_with_its_index(client):
    body = {"messages": [{"role": "user", "content": "hi"}], "n": 2}
    resp = (await client.post("/v1/chat/completions", json=body)).json()
    assert [c["index"] for c in resp["choices"]] == [0, 1]
    async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        chunks = [c async for c in sse.aevents(r.aiter_lines())]
    finishes = {c["choices"][0]["index"] for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")}
    assert finishes == {0, 1}


async def test_sampling_the_client_leaves_out_comes_from_the_served_model_defaults():
    stages = FakeStages()
    app = create_app(FakeBackend(stages, generator={"default_temperature": 0.3, "default_top_p": 0.8}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for extra in ({}, {"temperature": 0, "top_p": 1.0}, {"temperature": 1.5}):
            body = {"messages": [{"role": "user", "content": "hi"}], **extra}
            assert (await c.post("/v1/chat/completions", json=body)).status_code == 200
    assert [(r.temperature, r.top_p) for r in stages.requests] == [(0.3, 0.8), (0.0, 1.0), (1.5, 0.8)]


async def test_a_client_may_not_weaken_moderation_unless_the_operator_allows_it():
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True, "moderation_mode": "async"}
    app = create_app(FakeBackend(FakeStages()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        err = assert_openai_error(await c.post("/v1/chat/completions", json=body), 403)
        assert err["param"] == "moderation_mode"
        ok = {**body, "moderation_mode": "buffered"}
        assert (await c.post("/v1/chat/completions", json=ok)).status_code == 200
    app = create_app(FakeBackend(FakeStages(), api={"keys": "k1,k2"}, streaming={"async_api_keys": ["k2"]}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert_openai_error(await c.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer k1"}), 403)
        resp = await c.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer k2"})
        assert resp.status_code == 200


async def test_overload_gets_a_fast_429_with_retry_after():
    backend = FakeBackend(FakeStages(answer="slow " * 50, delay=0.02),
                          api={"admission": {"max_active": 1, "max_waiting": 1, "max_wait_s": 0.05}})
    app = create_app(backend)
    body = {"messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resps = await asyncio.gather(*(c.post("/v1/chat/completions", json=body) for _ in range(4)))
    codes = sorted(r.status_code for r in resps)
    assert codes[0] == 200 and codes[-1] == 429
    rejected = [r for r in resps if r.status_code == 429]
    assert all(r.headers["retry-after"] == "2" for r in rejected)
    assert assert_openai_error(rejected[0], 429)["code"] == "rate_limit_exceeded"
    reg = backend.metrics.registry
    counted = sum(reg.get_sample_value("chatgate_admission_rejected_total", {"reason": r}) or 0 for r in ("full", "wait_budget"))
    assert counted == len(rejected)
    assert app.state.admission.active == 0  # every slot was given back


async def test_stream_slots_are_released_when_the_stream_ends(client):
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        async for _ in r.aiter_lines():
            break
    for _ in range(3):
        await client.post("/v1/chat/completions", json=body)
    await asyncio.sleep(0.05)
    assert client._transport.app.state.admission.active == 0


async def test_sse_keepalive_comments_flow_while_buffered_text_is_held_back():
    """A proxy learns that a client left only when a write fails: comments keep writes going while
    a buffered window waits for its check, so a gone client is noticed (and its engine request
    aborted) within a few keep-alive intervals. Clients ignore SSE comments."""
    backend = FakeBackend(FakeStages(answer=" ".join(["word"] * 8), delay=0.1), streaming={"keepalive_s": 0.05})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(backend)), base_url="http://t") as c:
        async with c.stream("POST", "/v1/chat/completions",
                            json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as resp:
            lines = [line async for line in resp.aiter_lines() if line]
    pings = [line for line in lines if line.startswith(":")]
    data = [line for line in lines if line.startswith("data: ")]
    assert len(pings) >= 5, lines  # ~0.8 s of generation at one comment per 0.05 s
    assert data[-1] == "data: [DONE]"
    assert "".join(json.loads(d[6:])["choices"][0]["delta"].get("content") or "" for d in data[:-1]) == " ".join(["word"] * 8)
