"""HTTP surface over a fake backend: OpenAI shapes, SSE framing, errors, the official client."""
import json

import httpx
import pytest
from openai import AsyncOpenAI

from services.api.app import create_app
from tests.fakes import FakeBackend, FakeStages


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


async def test_x_request_id_becomes_the_completion_id(client):
    body = {"messages": [{"role": "user", "content": "hi"}]}
    resp = await client.post("/v1/chat/completions", json=body, headers={"x-request-id": "job-42-0"})
    assert resp.json()["id"] == "chatcmpl-job-42-0"
    resp = await client.post("/v1/chat/completions", json=body, headers={"x-request-id": "bad id with spaces"})
    assert resp.json()["id"].startswith("chatcmpl-") and " " not in resp.json()["id"]
