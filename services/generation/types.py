"""What crosses the Router -> Generator hop (plain dataclasses: cheap to pickle)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GenerationRequest:
    request_id: str
    messages: list[dict[str, str]]  # [{"role": ..., "content": ...}], already validated
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # Deltas wait on the Generator until at least this many characters have gathered (or the
    # answer ends): a non-streamed answer still arrives in pieces, so its output windows are
    # checked while it is generated, at a fraction of per-token hops. 0: every engine delta.
    chunk_chars: int = 0


@dataclass
class GenerationStep:
    """One streamed step. The first step of a stream carries `prompt_tokens` (or an `error`)."""

    text: str = ""
    completion_tokens: int = 0  # cumulative
    prompt_tokens: int = 0
    finish_reason: str | None = None  # "stop" | "length" | None while running
    error: str | None = None  # a client error (e.g. prompt too long): becomes a 400
    error_code: str | None = None
