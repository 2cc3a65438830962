"""POST /v1/feedback and the page's routes over the real app (fake backend), real PostgreSQL."""
from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from tests.feedback.support import feedback_pg  # noqa: F401
from tests.web.support import KEYS, WebApp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
ASK = {"messages": [{"role": "user", "content": "Explain how a classification algorithm works"}]}


@pytest.fixture
async def web(feedback_pg):
    web = WebApp(feedback_pg)
    yield web
    web.close()


def client(web: WebApp, key: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app), base_url="http://t", headers=headers)


def assert_error(resp: httpx.Response, status: int, param: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if param is not None:
        assert err["param"] == param, err
    return err


async def test_thumbs_land_in_postgres_joined_to_the_outcome(web, feedback_pg):
    async with client(web) as c:
        answer = (await c.post("/v1/chat/completions", json=ASK)).json()
        refusal = (await c.post("/v1/chat/completions",
                                json={"messages": [{"role": "user", "content": "you idiot"}]})).json()
        up = await c.post("/v1/feedback", json={"completion_id": answer["id"], "choice_index": 0, "rating": "up"})
        down = await c.post("/v1/feedback", json={"completion_id": refusal["id"], "rating": "down",
                                                  "reason": "I only asked a question"})
    assert up.status_code == 200, up.text
    assert up.json()["verdict"] == "positive" and up.json()["id"].startswith("fb-")
    assert down.status_code == 200 and refusal["choices"][0]["finish_reason"] == "content_filter"
    with psycopg.connect(feedback_pg) as conn:
        rows = conn.execute("SELECT f.verdict, ch.outcome, ch.template_category, f.reason FROM chatgate_feedback f "
                            "JOIN chatgate_completion_choices ch USING (completion_id, choice_index) "
                            "ORDER BY f.id").fetchall()
    assert rows == [("positive", "answered", None, None),
                    ("negative", "input_blocked", "harassment", "I only asked a question")]
    # a thumbs-down on a refusal: the over-blocking signal an operator watches
    assert web.count(kind="rating", verdict="negative", outcome="input_blocked") == 1
    assert web.count(kind="rating", verdict="positive", outcome="answered") == 1


async def test_feedback_a_moment_after_the_answer_finds_its_record(web):
    web.settings.feedback.lookup_wait_s = 3.0
    real_insert = web.recorder.store.insert_completions

    def slow_insert(rows):  # the writer is behind: feedback must wait for it, not 404
        time.sleep(0.5)
        return real_insert(rows)

    web.recorder.store.insert_completions = slow_insert
    async with client(web) as c:
        answer = (await c.post("/v1/chat/completions", json=ASK)).json()
        resp = await c.post("/v1/feedback", json={"completion_id": answer["id"], "score": 4})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("body,param", [
    ({"completion_id": "chatcmpl-x", "rating": "sideways"}, "rating"),
    ({"completion_id": "chatcmpl-x", "score": 11}, "score"),
    ({"completion_id": "chatcmpl-x", "rating": "up", "choice_index": 99}, "choice_index"),
    ({"completion_id": "nope", "rating": "up"}, "completion_id"),
    ({"completion_id": "chatcmpl-x", "rating": "up", "extra": 1}, "extra"),
    ({"completion_id": "chatcmpl-x", "rating": "up", "score": 3}, None),
])
async def test_bad_feedback_is_a_400_in_openai_shape(web, body, param):
    async with client(web) as c:
        assert_error(await c.post("/v1/feedback", json=body), 400, param)
        assert_error(await c.post("/v1/feedback", content=b"{nope", headers={"content-type": "application/json"}), 400)


async def test_unknown_choices_and_limits(web):
    web.settings.feedback.reason_max_chars = 20
    async with client(web) as c:
        answer = (await c.post("/v1/chat/completions", json=ASK)).json()
        cid = answer["id"]
        err = assert_error(await c.post("/v1/feedback", json={"completion_id": "chatcmpl-unknown", "rating": "up"}),
                           404, "completion_id")
        assert err["code"] == "completion_not_found"
        assert_error(await c.post("/v1/feedback", json={"completion_id": cid, "choice_index": 1, "rating": "up"}),
                     400, "choice_index")
        assert_error(await c.post("/v1/feedback", json={"completion_id": cid, "rating": "up", "reason": "x" * 21}),
                     400, "reason")
        assert_error(await c.post("/v1/feedback", json={"completion_id": cid, "preferred_index": 0}),
                     400, "preferred_index")  # one answer: nothing to prefer it over


async def test_preference_between_two_answers_to_one_prompt(web, feedback_pg):
    async with client(web) as c:
        a = (await c.post("/v1/chat/completions", json=ASK)).json()["id"]
        b = (await c.post("/v1/chat/completions", json=ASK)).json()["id"]
        other = (await c.post("/v1/chat/completions",
                              json={"messages": [{"role": "user", "content": "Say hello"}]})).json()["id"]
        resp = await c.post("/v1/feedback", json={"ranking": [{"completion_id": b}, {"completion_id": a}]})
        assert resp.status_code == 200, resp.text
        assert resp.json()["ranking"] == [{"completion_id": b, "index": 0}, {"completion_id": a, "index": 0}]
        assert_error(await c.post("/v1/feedback", json={"ranking": [{"completion_id": a}, {"completion_id": other}]}),
                     400, "ranking")
    assert web.count(kind="preference", verdict="chosen", outcome="answered") == 1
    assert web.count(kind="preference", verdict="rejected", outcome="answered") == 1


async def test_preference_among_the_choices_of_one_completion(web):
    async with client(web) as c:
        resp = await c.post("/v1/chat/completions", json={**ASK, "n": 2})
        if resp.status_code == 400 and resp.json()["error"]["param"] == "n":
            pytest.skip("this server does not accept n > 1 yet")
        body = resp.json()
        assert [ch["index"] for ch in body["choices"]] == [0, 1]
        pref = await c.post("/v1/feedback", json={"completion_id": body["id"], "preferred_index": 1})
    assert pref.status_code == 200, pref.text
    assert pref.json()["ranking"] == [{"completion_id": body["id"], "index": 1}, {"completion_id": body["id"], "index": 0}]


async def test_feedback_is_scoped_to_the_api_key_that_made_the_completion(feedback_pg):
    web = WebApp(feedback_pg, keys=KEYS)
    try:
        async with client(web, KEYS[0]) as alice, client(web, KEYS[1]) as bob, client(web) as nobody:
            cid = (await alice.post("/v1/chat/completions", json=ASK)).json()["id"]
            body = {"completion_id": cid, "rating": "up"}
            assert_error(await nobody.post("/v1/feedback", json=body), 401)
            assert_error(await bob.post("/v1/feedback", json=body), 404, "completion_id")
            assert (await alice.post("/v1/feedback", json=body)).status_code == 200
            page = await nobody.get("/")  # the page itself needs no key; it asks for one
            assert page.status_code == 200
    finally:
        web.close()


async def test_page_and_assets_are_served_same_origin_only(web):
    async with client(web) as c:
        page = await c.get("/")
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert '<label for="question">' in page.text and 'src="/static/chat.js"' in page.text
        js = await c.get("/static/chat.js")
        assert js.headers["content-type"].startswith("text/javascript") and "/v1/feedback" in js.text
        assert (await c.get("/static/chat.css")).status_code == 200
        assert_error(await c.get("/static/index.py"), 404)
        assert (await c.get("/static/..%2Fservices%2Fweb%2Frouter.py")).status_code == 404


async def test_storage_down_is_a_503_not_a_crash(feedback_pg):
    from services.feedback.store import FeedbackStore

    web = WebApp(feedback_pg, feedback_store=FeedbackStore("postgresql://postgres@127.0.0.1:1/none"))
    try:
        async with client(web) as c:
            cid = (await c.post("/v1/chat/completions", json=ASK)).json()["id"]
            err = assert_error(await c.post("/v1/feedback", json={"completion_id": cid, "rating": "up"}), 503)
            assert err["code"] == "feedback_unavailable"
    finally:
        web.close()
