"""tools.bench.answer_filter counts the answers a (fake) chatgate replaced, and sends the sampling asked for."""
import json

import httpx

from tools.bench.answer_filter import replaced


async def test_replaced_answers_are_counted_with_the_sampling_sent():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({k: body.get(k) for k in ("temperature", "top_p", "seed")})
        reason = "content_filter" if "wine" in body["messages"][0]["content"] else "stop"
        return httpx.Response(200, json={"choices": [{"finish_reason": reason, "message": {"content": "x"}}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://t") as client:
        hits = await replaced(client, ["pancakes?", "red wine on a carpet?", "a haiku"], {"temperature": 1.0})
    assert hits == ["red wine on a carpet?"]
    assert sorted(s["seed"] for s in seen) == [0, 1, 2]
    assert all(s["temperature"] == 1.0 and s["top_p"] is None for s in seen)
