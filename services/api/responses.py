"""OpenAI response bodies (chat.completion and chat.completion.chunk), built with the `openai` types.

chatgate adds one documented top-level field, `chatgate_moderation`, when a template replaced
the answer: {"stage", "categories", "category_scores", "template": {...}, "flagged_span"?}.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.completion_usage import CompletionUsage

from services.api.errors import error_body
from services.pipeline.turn import Answer, Blocked, Delta, Event, Failed, Finished, Usage

MODERATION_FIELD = "chatgate_moderation"


def usage(prompt_tokens: int, completion_tokens: int) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def completion(answer: Answer, model: str) -> dict[str, Any]:
    """A chat.completion body; a blocked choice carries the template and finish_reason content_filter."""
    body = ChatCompletion(
        id=answer.completion_id,
        object="chat.completion",
        created=int(time.time()),
        model=model,
        choices=[
            Choice(
                index=c.index,
                message=ChatCompletionMessage(role="assistant", content=c.text),
                finish_reason=c.finish_reason,  # type: ignore[arg-type]
            )
            for c in answer.choices
        ],
        usage=usage(answer.prompt_tokens, answer.completion_tokens),
    ).model_dump(mode="json", exclude_none=True)
    blocks = [c.block for c in answer.choices if c.block is not None]
    if blocks:
        # n=1 (the common case): one report; n>1: the report of the first blocked choice, and
        # each blocked choice's own report next to it.
        body[MODERATION_FIELD] = blocks[0].report()
        if len(answer.choices) > 1:
            for c, out in zip(answer.choices, body["choices"]):
                if c.block is not None:
                    out[MODERATION_FIELD] = c.block.report()
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

    def role(self, index: int = 0) -> dict[str, Any]:
        return self._chunk([ChunkChoice(index=index, delta=ChoiceDelta(role="assistant", content=""))])

    def content(self, text: str, index: int = 0) -> dict[str, Any]:
        return self._chunk([ChunkChoice(index=index, delta=ChoiceDelta(content=text))])

    def finish(self, finish_reason: str, moderation: dict[str, Any] | None = None, index: int = 0) -> dict[str, Any]:
        chunk = self._chunk([ChunkChoice(index=index, delta=ChoiceDelta(), finish_reason=finish_reason)])  # type: ignore[arg-type]
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


def stream_chunks(events: AsyncIterator[Event], completion_id: str, model: str, n: int,
                  include_usage: bool) -> AsyncIterator[dict[str, Any]]:
    """Pipeline events -> chat.completion.chunk bodies (a role chunk first for each choice)."""
    chunks = ChunkFactory(completion_id, model)

    async def render() -> AsyncIterator[dict[str, Any]]:
        for i in range(n):
            yield chunks.role(i)
        async with contextlib.aclosing(events):  # closing the response closes the pipeline stream
            async for event in events:
                if isinstance(event, Delta):
                    yield chunks.content(event.text, event.choice)
                elif isinstance(event, Finished):
                    yield chunks.finish(event.finish_reason, index=event.choice)
                elif isinstance(event, Blocked):
                    sep = "\n\n" if event.text_sent else ""
                    yield chunks.content(sep + event.block.template.text, event.choice)
                    yield chunks.finish("content_filter", event.block.report(), index=event.choice)
                elif isinstance(event, Failed):
                    yield error_body(503, "The model failed while streaming this answer. Please retry.",
                                     code="generator_unavailable")
                elif isinstance(event, Usage) and include_usage:
                    yield chunks.usage(event.prompt_tokens, event.completion_tokens)

    return render()
