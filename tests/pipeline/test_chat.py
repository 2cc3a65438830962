"""The moderated flow with fake stages: decisions, fail-closed, streaming hold-back, abort."""
import pytest

from services.api.errors import APIError
from services.api.schemas import ChatCompletionRequest
from tests.fakes import FakeStages, make_pipeline


def req(text: str, **kw) -> ChatCompletionRequest:
    return ChatCompletionRequest(messages=[{"role": "user", "content": text}], **kw)


async def collect(pipeline, request):
    return [c async for c in await pipeline.stream(request, "en", "m")]


def streamed_text(chunks) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


async def test_benign_prompt_is_answered():
    stages = FakeStages()
    pipeline, _ = make_pipeline(stages)
    body = await pipeline.complete(req("Explain classification"), "en", "m")
    assert body["choices"][0]["message"]["content"] == stages.answer
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 8, "total_tokens": 15}
    assert "chatgate_moderation" not in body


async def test_input_block_returns_template_and_never_calls_the_generator():
    stages = FakeStages()
    pipeline, _ = make_pipeline(stages)
    body = await pipeline.complete(req("I want to cut myself tonight"), "de", "m")
    assert stages.generate_calls == 0
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["choices"][0]["message"]["content"] == "[template self-harm/de]"
    mod = body["chatgate_moderation"]
    assert mod["stage"] == "input" and mod["categories"] == ["self-harm"]
    assert mod["category_scores"]["self-harm"] == pytest.approx(0.99)


async def test_output_block_replaces_the_answer():
    stages = FakeStages(answer="Sure. You are an idiot and everyone knows it.")
    pipeline, _ = make_pipeline(stages)
    body = await pipeline.complete(req("hi"), "en", "m")
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["chatgate_moderation"]["stage"] == "output"
    assert "idiot" not in body["choices"][0]["message"]["content"]


async def test_moderation_failure_fails_closed_by_default():
    stages = FakeStages(fail_moderation=True)
    pipeline, _ = make_pipeline(stages)
    body = await pipeline.complete(req("hello"), "en", "m")
    assert stages.generate_calls == 0
    assert body["chatgate_moderation"]["categories"] == ["moderation_unavailable"]


async def test_moderation_failure_can_be_configured_to_fail_open():
    stages = FakeStages(fail_moderation=True)
    pipeline, _ = make_pipeline(stages, moderation={"fail_open": True})
    body = await pipeline.complete(req("hello"), "en", "m")
    assert body["choices"][0]["message"]["content"] == stages.answer


async def test_max_tokens_over_the_limit_is_a_400():
    pipeline, _ = make_pipeline(FakeStages(), generator={"max_tokens_limit": 10})
    with pytest.raises(APIError) as err:
        await pipeline.complete(req("hi", max_tokens=11), "en", "m")
    assert err.value.status == 400 and err.value.param == "max_tokens"


async def test_prompt_too_long_is_a_400_before_streaming_starts():
    pipeline, _ = make_pipeline(FakeStages(error="too long"))
    with pytest.raises(APIError) as err:
        await pipeline.stream(req("hi", stream=True), "en", "m")
    assert err.value.code == "context_length_exceeded"


@pytest.mark.parametrize("mode", ["buffered", "async"])
async def test_stream_equals_non_streamed_answer(mode):
    answer = "Classification assigns labels. " * 12 + "Done."
    pipeline, _ = make_pipeline(FakeStages(answer=answer), streaming={"mode": mode, "window_chars": 80})
    chunks = await collect(pipeline, req("hi", stream=True, stream_options={"include_usage": True}))
    assert streamed_text(chunks) == answer
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == len(answer.split(" "))
    body = await pipeline.complete(req("hi"), "en", "m")
    assert body["choices"][0]["message"]["content"] == answer


async def test_buffered_stream_never_leaks_a_flagged_window_and_aborts_generation():
    clean = "This first part is entirely harmless text. "
    answer = clean + "Now the bad part: you idiot, I will say it again and again " + "and again " * 30
    stages = FakeStages(answer=answer)
    pipeline, _ = make_pipeline(stages, streaming={"mode": "buffered", "window_chars": 60, "overlap_chars": 20})
    chunks = await collect(pipeline, req("hi", stream=True))
    text = streamed_text(chunks)
    assert "idiot" not in text
    assert text.startswith(clean.strip())  # clean windows were released before the flag
    assert text.endswith("[template harassment/en]")
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "content_filter"
    assert final["chatgate_moderation"]["stage"] == "output"
    assert stages.closed_early  # generation was aborted, not run to the end


async def test_async_stream_flows_then_annotates_the_flagged_span():
    answer = "Fine start of the answer here. You idiot. " + "more words " * 40
    stages = FakeStages(answer=answer, delay=0.001)
    pipeline, _ = make_pipeline(stages, streaming={"mode": "async", "window_chars": 40, "overlap_chars": 10})
    chunks = await collect(pipeline, req("hi", stream=True))
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "content_filter"
    offsets = final["choices"][0]["content_filter_offsets"]
    assert "idiot" in answer[offsets["start_offset"] - 10:offsets["end_offset"]]
    assert streamed_text(chunks).endswith("[template harassment/en]")


async def test_input_block_streams_the_template():
    stages = FakeStages()
    pipeline, _ = make_pipeline(stages)
    chunks = await collect(pipeline, req("I will kill you", stream=True))
    assert stages.generate_calls == 0
    assert streamed_text(chunks) == "[template violence/en]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


async def test_closing_the_stream_early_aborts_generation():
    stages = FakeStages(answer="word " * 200, delay=0.001)
    pipeline, _ = make_pipeline(stages, streaming={"mode": "async"})
    stream = await pipeline.stream(req("hi", stream=True), "en", "m")
    async for _ in stream:
        break
    await stream.aclose()
    assert stages.closed_early


async def test_metrics_record_stages_and_outcomes():
    pipeline, metrics = make_pipeline(FakeStages())
    await pipeline.complete(req("hi"), "en", "m")
    await pipeline.complete(req("you idiot"), "en", "m")
    reg = metrics.registry
    assert reg.get_sample_value("chatgate_requests_total", {"outcome": "answered"}) == 1
    assert reg.get_sample_value("chatgate_requests_total", {"outcome": "input_blocked"}) == 1
    assert reg.get_sample_value("chatgate_stage_latency_seconds_count", {"stage": "input_moderation"}) == 2
    assert reg.get_sample_value("chatgate_moderation_flags_total", {"direction": "input", "category": "harassment"}) == 1


async def test_unreachable_template_stage_falls_back_to_builtin_texts():
    from tests.fakes import BrokenStages

    pipeline, _ = make_pipeline(BrokenStages(fail_after=0))
    body = await pipeline.complete(req("I want to cut myself tonight"), "fr", "m")
    assert body["chatgate_moderation"]["template"] == {"category": "self-harm", "language": "fr", "source": "builtin"}
    assert "3114" in body["choices"][0]["message"]["content"]


async def test_generator_failure_is_a_503_not_a_crash():
    from services.pipeline.chat import GenerationUnavailable
    from tests.fakes import BrokenStages

    pipeline, metrics = make_pipeline(BrokenStages(fail_after=-1))
    with pytest.raises(GenerationUnavailable):
        await pipeline.complete(req("hi"), "en", "m")
    with pytest.raises(GenerationUnavailable):
        await pipeline.stream(req("hi", stream=True), "en", "m")
    assert metrics.registry.get_sample_value("chatgate_requests_total", {"outcome": "error"}) == 2


async def test_generator_failure_mid_stream_ends_with_an_error_event():
    from tests.fakes import BrokenStages

    pipeline, _ = make_pipeline(BrokenStages(fail_after=3), streaming={"mode": "async"})
    chunks = await collect(pipeline, req("hi", stream=True))
    assert chunks[-1]["error"]["code"] == "generator_unavailable"
