"""The shared SSE reader (tools/sse.py): framing, errors inside a stream, and the user-felt timings."""
from __future__ import annotations

import json

import pytest

from tools.sse import DONE, StreamError, StreamTimer, aevents, events, parse_line


def chunk(text: str | None = None, finish: str | None = None, usage: dict | None = None) -> dict:
    c = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text} if text else {},
                                                         "finish_reason": finish}]}
    if usage:
        c = {"object": "chat.completion.chunk", "choices": [], "usage": usage}
    return c


def sse(*chunks: dict) -> list[str]:
    lines = [": ping", ""]
    for c in chunks:
        lines += [f"data: {json.dumps(c)}", ""]
    return lines + ["data: [DONE]", "", "data: {\"after\": \"done\"}"]


def test_parse_line_skips_non_data_and_knows_done():
    assert parse_line(": ping") is None and parse_line("") is None and parse_line("event: x") is None
    assert parse_line("data: [DONE]") is DONE
    assert parse_line('data:{"a":1}') == {"a": 1}
    with pytest.raises(StreamError, match="boom"):
        parse_line('data: {"error": {"message": "boom"}}')


def test_events_stop_at_done_and_accept_bytes():
    lines = sse(chunk("a"), chunk("b", "stop"))
    assert [c["choices"][0]["finish_reason"] for c in events(lines)] == [None, "stop"]
    assert len(list(events(line.encode() for line in lines))) == 2


async def test_async_events_match_sync():
    lines = sse(chunk("x"), chunk(usage={"completion_tokens": 1}))

    async def agen():
        for line in lines:
            yield line

    assert [c async for c in aevents(agen())] == list(events(lines))


def test_stream_timer_measures_first_content_first_chars_and_gaps():
    t = StreamTimer(t0=10.0, first_chars=5)
    t.add(chunk(), now=10.1)  # role-only chunk: no content, no TTFT
    t.add(chunk("abc"), now=10.3)
    t.add(chunk("de"), now=10.45)
    t.add(chunk("f", "length"), now=10.5)
    t.add(chunk(usage={"completion_tokens": 3}), now=10.6)
    assert t.ttft == pytest.approx(0.3) and t.t_first_chars == pytest.approx(0.45)
    assert t.gaps == pytest.approx([0.15, 0.05])
    assert (t.text, t.finish_reason, t.completion_tokens) == ("abcdef", "length", 3)


def test_short_answer_reaches_first_chars_at_its_end():
    t = StreamTimer(t0=0.0, first_chars=32)
    t.add(chunk("hi"), now=0.2)
    t.add(chunk("!", "stop"), now=0.3)
    t.finish()
    assert t.t_first_chars == pytest.approx(0.3)
