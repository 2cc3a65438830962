"""An OpenAI chat request -> the pipeline's ChatTurn: limits, operator policy, ids, languages."""
from __future__ import annotations

import re

from fastapi import Request

from services.api.errors import APIError
from services.api.schemas import ChatCompletionRequest
from services.config import Settings
from services.pipeline.turn import ChatTurn, Message
from services.templates.language import language_preferences

_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,96}")


def _limit(ok: bool, message: str, param: str) -> None:
    if not ok:
        raise APIError(400, message, param=param, code="invalid_value")


def build_turn(body: ChatCompletionRequest, request: Request, settings: Settings) -> ChatTurn:
    limits, gen = settings.api.limits, settings.generator
    msgs = body.messages
    _limit(len(msgs) <= limits.max_messages, f"at most {limits.max_messages} messages are allowed", "messages")
    for i, m in enumerate(msgs):
        _limit(len(m.text) <= limits.max_message_chars,
               f"a message may have at most {limits.max_message_chars} characters", f"messages.{i}.content")
    _limit(sum(len(m.text) for m in msgs) <= limits.max_total_chars,
           f"the messages may have at most {limits.max_total_chars} characters in all", "messages")
    stop = body.stop_list()
    _limit(len(stop) <= limits.max_stop, f"at most {limits.max_stop} stop sequences are allowed", "stop")
    _limit(all(0 < len(s) <= limits.max_stop_chars for s in stop),
           f"stop sequences must have 1 to {limits.max_stop_chars} characters", "stop")
    _limit(body.n <= limits.max_n, f"n must be at most {limits.max_n}", "n")
    max_tokens = body.requested_max_tokens() or gen.default_max_tokens
    _limit(max_tokens <= gen.max_tokens_limit, f"max_tokens must be at most {gen.max_tokens_limit}", "max_tokens")
    client_id = request.headers.get("x-request-id")
    return ChatTurn(
        messages=[Message(m.role, m.text) for m in msgs],
        max_tokens=max_tokens,
        temperature=gen.default_temperature if body.temperature is None else body.temperature,
        top_p=gen.default_top_p if body.top_p is None else body.top_p,
        stop=stop, seed=body.seed, n=body.n,
        languages=language_preferences(body.language, request.headers.get("accept-language")),
        mode=stream_mode(body, request, settings),
        correlation_id=client_id if client_id and _CORRELATION_ID.fullmatch(client_id) else None,
        api_key_id=getattr(request.state, "api_key_id", None),
    )


def stream_mode(body: ChatCompletionRequest, request: Request, settings: Settings) -> str:
    """The operator's mode, unless the client asks for another one it may use: buffered (stricter)
    always; async only where the operator allows it (for everyone, or for listed API keys)."""
    streaming = settings.streaming
    asked = body.moderation_mode
    if asked is None or asked == streaming.mode or asked == "buffered":
        return asked or streaming.mode
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if streaming.allow_client_async or (scheme.lower() == "bearer" and token in streaming.async_api_keys):
        return asked
    raise APIError(403, "moderation_mode 'async' is not allowed for this client; the operator sets the mode.",
                   param="moderation_mode", code="moderation_mode_not_allowed")
