"""Request models for the OpenAI-compatible API (validation happens here, before any stage runs).

Responses use the `openai` package's own types (ChatCompletion, ChatCompletionChunk) so the
official client parses them unchanged.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


INT64 = 2**63  # seeds travel to the engine as non-negative int64


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    # None is allowed for assistant turns that only carried tool calls.
    content: str | list[TextPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # Unknown OpenAI fields (logprobs, tools, ...) are ignored rather than rejected, as most
    # OpenAI-compatible servers do; the ones we support are validated strictly.
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    stop: str | list[str] | None = None
    seed: Annotated[int, Field(ge=0, lt=INT64)] | None = None
    user: str | None = None
    n: Annotated[int, Field(ge=1)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    # chatgate extensions (documented in the README)
    language: str | None = Field(default=None, description="Template language; else Accept-Language")
    moderation_mode: Literal["buffered", "async"] | None = Field(
        default=None, description="Per-request streaming moderation mode override"
    )

    @field_validator("messages")
    @classmethod
    def _needs_a_non_empty_message(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.text.strip() for m in messages):
            raise ValueError("messages must contain at least one non-empty message")
        return messages

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ModerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: str | Annotated[list[str], Field(min_length=1)]
    model: str | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
