"""What the pipeline takes and gives back, in domain terms (no HTTP, no OpenAI JSON).

services/api turns a request into a `ChatTurn` and turns an `Answer` or a stream of events back
into OpenAI bodies and SSE chunks.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from services.pipeline.outcome import Block

StreamMode = Literal["buffered", "async"]


@dataclass(frozen=True)
class Message:
    role: str  # system | developer | user | assistant | tool
    content: str


@dataclass
class ChatTurn:
    messages: list[Message]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    languages: list[str] = field(default_factory=list)  # template language preferences, best first
    mode: StreamMode = "buffered"  # streaming moderation mode, already allowed by the operator
    # Our id (the engine's request id and the completion id); never chosen by the client, so two
    # requests can never share one inside vLLM or the audit trail.
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    correlation_id: str | None = None  # the client's X-Request-ID, kept for matching only
    api_key_id: str | None = None

    def texts(self) -> list[str]:
        """Every message of every role: what input moderation checks (fake history included)."""
        return [m.content for m in self.messages if m.content.strip()]

    def request_text(self) -> str:
        """The user request an answer responds to: output moderation judges answers against it."""
        for m in reversed(self.messages):
            if m.role == "user" and m.content.strip():
                return m.content
        return self.texts()[-1] if self.texts() else ""

    def engine_messages(self) -> list[dict[str, str]]:
        # Chat templates know "system", not OpenAI's newer "developer" role.
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in self.messages]


# -- streamed events ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Delta:
    choice: int
    text: str


@dataclass(frozen=True)
class Blocked:
    """A check flagged this choice: the template replaces the rest (and, in buffered mode, all) of it."""

    choice: int
    block: Block
    text_sent: bool  # whether answer text already reached the client (async mode)


@dataclass(frozen=True)
class Finished:
    choice: int
    finish_reason: str  # stop | length


@dataclass(frozen=True)
class Failed:
    """The generator died mid-stream; the stream ends with an error event."""

    choice: int
    message: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


Event = Delta | Blocked | Finished | Failed | Usage


# -- a finished answer -------------------------------------------------------------------------
@dataclass
class Choice:
    index: int
    text: str  # the answer, or the template when blocked
    finish_reason: str  # stop | length | content_filter
    block: Block | None = None
    completion_tokens: int = 0

    @property
    def outcome(self) -> str:
        return self.block.outcome if self.block else "answered"


@dataclass
class Answer:
    completion_id: str
    choices: list[Choice]
    prompt_tokens: int = 0

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)

    @property
    def outcome(self) -> str:
        """One word for the request: input_blocked, output_blocked (any choice) or answered."""
        outcomes = {c.outcome for c in self.choices}
        for o in ("input_blocked", "output_blocked"):
            if o in outcomes:
                return o
        return "answered"
