"""One reader for OpenAI-style chat SSE streams, shared by the load test (loadtest/), the benchmark
(tools/bench), the fault suite and the tests: `data: {...}` lines until `data: [DONE]`.

`events(lines)` / `aevents(lines)` turn the lines of a response into JSON chunks (sync for
requests/httpx, async for httpx.AsyncClient); `StreamTimer` turns chunks into what a user feels:
time to the first content, to the first N characters, the gaps between content events, the finish
reason and the usage. No locust or httpx import here (the locustfile imports this module)."""
from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

DONE = "[DONE]"


class StreamError(RuntimeError):
    """The server sent an `error` object inside the stream."""


def parse_line(line: str) -> dict[str, Any] | str | None:
    """One SSE line -> a JSON chunk, DONE, or None (comments, pings, blank lines, other fields)."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == DONE:
        return DONE
    if not payload:
        return None
    chunk = json.loads(payload)
    if isinstance(chunk, dict) and "error" in chunk:
        raise StreamError(f"stream error: {chunk['error']}")
    return chunk


def events(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        parsed = parse_line(line.decode() if isinstance(line, bytes) else line)
        if parsed is DONE:
            return
        if parsed is not None:
            yield parsed  # type: ignore[misc]


async def aevents(lines: AsyncIterable[str]) -> AsyncIterator[dict[str, Any]]:
    async for line in lines:
        parsed = parse_line(line)
        if parsed is DONE:
            return
        if parsed is not None:
            yield parsed  # type: ignore[misc]


def delta_text(chunk: dict[str, Any]) -> str:
    return "".join((ch.get("delta") or {}).get("content") or "" for ch in chunk.get("choices") or [])


@dataclass
class StreamTimer:
    """Feed it each chunk as it arrives (`add`); times are seconds since `t0` (perf_counter)."""

    t0: float = field(default_factory=time.perf_counter)
    first_chars: int = 32
    parts: list[str] = field(default_factory=list)
    ttft: float | None = None  # first content
    t_first_chars: float | None = None  # first `first_chars` characters
    gaps: list[float] = field(default_factory=list)  # between content events (vLLM's ITL convention)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    _last: float | None = None
    _chars: int = 0

    def add(self, chunk: dict[str, Any], now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        self.chunks.append(chunk)
        text = delta_text(chunk)
        if text:
            since = now - self.t0
            if self.ttft is None:
                self.ttft = since
            else:
                self.gaps.append(now - self._last)  # type: ignore[operator]
            self._last = now
            self._chars += len(text)
            if self.t_first_chars is None and self._chars >= self.first_chars:
                self.t_first_chars = since
            self.parts.append(text)
        for ch in chunk.get("choices") or []:
            self.finish_reason = ch.get("finish_reason") or self.finish_reason
        if chunk.get("usage"):
            self.usage = chunk["usage"]

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def completion_tokens(self) -> int:
        return int((self.usage or {}).get("completion_tokens") or 0)

    def finish(self) -> None:
        """End of stream: a short answer that never reached `first_chars` counts at its end."""
        if self.t_first_chars is None and self.ttft is not None:
            self.t_first_chars = self._last - self.t0  # type: ignore[operator]
