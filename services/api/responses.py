"""OpenAI response bodies (chat.completion and chat.completion.chunk), built with the `openai` types.

chatgate adds one documented top-level field, `chatgate_moderation`, when a template replaced
the answer: {"stage", "categories", "category_scores", "template": {...}, "flagged_span"?}.
"""
from __future__ import annotations

import time
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.completion_usage import CompletionUsage

MODERATION_FIELD = "chatgate_moderation"


def usage(prompt_tokens: int, completion_tokens: int) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def completion(
    *, request_id: str, model: str, content: str, finish_reason: str, prompt_tokens: int,
    completion_tokens: int, moderation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = ChatCompletion(
        id=request_id,
        object="chat.completion",
        created=int(time.time()),
        model=model,
        choices=[
            Choice(
                index=0,
                message=ChatCompletionMessage(role="assistant", content=content),
                finish_reason=finish_reason,  # type: ignore[arg-type]
            )
        ],
        usage=usage(prompt_tokens, completion_tokens),
    ).model_dump(mode="json", exclude_none=True)
    if moderation is not None:
        body[MODERATION_FIELD] = moderation
    return body


class ChunkFactory:
    """Builds the chunks of one stream (same id, created and model on each)."""

    def __init__(self, request_id: str, model: str):
        self.request_id, self.model, self.created = request_id, model, int(time.time())

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> dict[str, Any]:
        body = ChatCompletionChunk(
            id=self.request_id, object="chat.completion.chunk", created=self.created,
            model=self.model, choices=choices,
        ).model_dump(mode="json", exclude_none=True)
        for choice in body["choices"]:
            choice.setdefault("finish_reason", None)
        body.update({k: v for k, v in extra.items() if v is not None})
        return body

    def role(self) -> dict[str, Any]:
        return self._chunk([ChunkChoice(index=0, delta=ChoiceDelta(role="assistant", content=""))])

    def content(self, text: str) -> dict[str, Any]:
        return self._chunk([ChunkChoice(index=0, delta=ChoiceDelta(content=text))])

    def finish(self, finish_reason: str, moderation: dict[str, Any] | None = None) -> dict[str, Any]:
        chunk = self._chunk([ChunkChoice(index=0, delta=ChoiceDelta(), finish_reason=finish_reason)])  # type: ignore[arg-type]
        if moderation is not None:
            chunk[MODERATION_FIELD] = moderation
            if "flagged_span" in moderation:
                # Azure-style offsets into the streamed answer (async mode: text already sent).
                span = moderation["flagged_span"]
                chunk["choices"][0]["content_filter_offsets"] = {
                    "check_offset": span["start"], "start_offset": span["start"], "end_offset": span["end"],
                }
        return chunk

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        body = self._chunk([])
        body["usage"] = usage(prompt_tokens, completion_tokens).model_dump(mode="json", exclude_none=True)
        return body
