"""The moderated flow with fake stages: decisions, fail-closed, overlap, streaming hold-back, n, abort."""
import asyncio

import pytest

from services.pipeline.errors import GenerationUnavailable, InvalidTurn
from services.pipeline.turn import Blocked, Delta, Failed, Finished, Usage
from tests.pipeline.fakes import BrokenStages, FakeStages, make_pipeline, turn


async def collect(pipeline, t):
    return [e async for e in await pipeline.stream(t)]


def text_of(events, choice=0) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta) and e.choice == choice)


async def test_benign_prompt_is_answered():
    stages = FakeStages()
    pipeline, _ = make_pipeline(stages)
    answer = await pipeline.complete(turn("Explain classification"))
    (choice,) = answer.choices
    assert choice.text == stages.answer and choice.finish_reason == "stop" and choice.block is None
    assert (answer.prompt_tokens, answer.completion_tokens) == (7, 8)


async def test_input_block_returns_template_and_aborts_the_generation_it_overlapped():
    stages = FakeStages(answer="word " * 100, delay=0.001, input_delay=0.01)
    pipeline, metrics = make_pipeline(stages)
    answer = await pipeline.complete(turn("I want to cut myself tonight", languages=["de"]))
    (choice,) = answer.choices
    assert choice.finish_reason == "content_filter" and choice.text == "[template self-harm/de]"
    assert choice.block.direction == "input" and choice.block.verdict.flagged_categories == ["self-harm"]
    assert stages.closed_early == 1  # generation had started (overlap) and was aborted at once
    assert stages.tokens_generated < 100
    assert metrics.registry.get_sample_value("chatgate_blocked_engine_seconds_total", {"stage": "input"}) > 0


async def test_every_role_is_checked_at_input():
    stages = FakeStages()
    pipeline, _ = make_pipeline(stages)
    t = turn("Please continue.", history=[("system", "Be nice."), ("assistant", "You idiot, here is how.")])
    answer = await pipeline.complete(t)
    assert answer.choices[0].block.direction == "input"
    assert stages.input_checks[0] == ["Be nice.", "You idiot, here is how.", "Please continue."]


async def test_no_token_leaves_before_the_input_check_passed():
    stages = FakeStages(answer="fine words " * 20, input_delay=0.05)
    pipeline, _ = make_pipeline(stages, streaming={"mode": "async"})
    t0 = asyncio.get_running_loop().time()
    events = await pipeline.stream(turn("hello"))
    first = await anext(events)
    assert asyncio.get_running_loop().time() - t0 >= 0.05 and isinstance(first, Delta)
    await events.aclose()


async def test_output_block_replaces_the_answer_and_output_checks_see_the_request():
    stages = FakeStages(answer="Sure. You are an idiot and everyone knows it.")
    pipeline, _ = make_pipeline(stages)
    answer = await pipeline.complete(turn("what do you think of me?"))
    choice = answer.choices[0]
    assert choice.finish_reason == "content_filter" and choice.block.direction == "output"
    assert "idiot" not in choice.text
    assert all(request == "what do you think of me?" for request, _ in stages.output_checks)


async def test_non_streamed_answer_is_checked_while_it_is_generated():
    """Windows are checked as they complete, so most checks overlap generation, not follow it."""
    stages = FakeStages(answer="Plain harmless sentence number one is here. " * 10, delay=0.002)
    tokens_at_check: list[int] = []
    moderate_output = stages.moderate_output

    async def recording(request, texts):
        tokens_at_check.append(stages.tokens_generated)
        return await moderate_output(request, texts)

    stages.moderate_output = recording
    pipeline, _ = make_pipeline(stages, streaming={"window_chars": 80, "overlap_chars": 20})
    answer = await pipeline.complete(turn("hi"))
    assert answer.choices[0].text == stages.answer and answer.choices[0].block is None
    total = len(stages.answer.split(" "))
    assert len(tokens_at_check) > 3 and tokens_at_check[0] < total // 4
    assert stages.requests[0].chunk_chars > 0  # the Generator sends pieces, not every token


async def test_non_streamed_flag_stops_generation_early():
    answer = "This first part is entirely harmless text. You idiot. " + "and more words " * 200
    stages = FakeStages(answer=answer, delay=0.001)
    pipeline, metrics = make_pipeline(stages, streaming={"window_chars": 60, "overlap_chars": 20})
    choice = (await pipeline.complete(turn("hi"))).choices[0]
    assert choice.finish_reason == "content_filter" and "idiot" not in choice.text
    assert stages.closed_early == 1 and stages.tokens_generated < len(answer.split(" "))
    assert metrics.registry.get_sample_value("chatgate_blocked_engine_seconds_total", {"stage": "output"}) > 0


async def test_moderation_failure_fails_closed_by_default():
    stages = FakeStages(fail_moderation=True)
    pipeline, metrics = make_pipeline(stages)
    answer = await pipeline.complete(turn("hello"))
    assert answer.choices[0].block.verdict.flagged_categories == ["moderation_unavailable"]
    assert metrics.registry.get_sample_value("chatgate_moderation_failures_total", {"direction": "input"}) == 1


async def test_moderation_failure_can_be_configured_to_fail_open_and_is_counted():
    stages = FakeStages(fail_moderation=True)
    pipeline, metrics = make_pipeline(stages, guard={"fail_open": True})
    answer = await pipeline.complete(turn("hello"))
    assert answer.choices[0].text == stages.answer
    windows = len(stages.output_checks)  # each window is its own check, and each failed
    assert windows >= 1
    assert metrics.registry.get_sample_value("chatgate_moderation_failures_total", {"direction": "output"}) == windows


async def test_slow_moderation_times_out_and_fails_closed():
    stages = FakeStages(input_delay=1.0)
    pipeline, _ = make_pipeline(stages, guard={"moderation_timeout_s": 0.05})
    answer = await pipeline.complete(turn("hello"))
    assert answer.choices[0].block.verdict.flagged_categories == ["moderation_unavailable"]


async def test_prompt_too_long_is_invalid_before_streaming_starts():
    pipeline, _ = make_pipeline(FakeStages(error="too long"))
    with pytest.raises(InvalidTurn) as err:
        await pipeline.stream(turn("hi"))
    assert err.value.code == "context_length_exceeded"


@pytest.mark.parametrize("mode", ["buffered", "async"])
async def test_stream_equals_non_streamed_answer(mode):
    answer = "Classification assigns labels. " * 12 + "Done."
    pipeline, _ = make_pipeline(FakeStages(answer=answer), streaming={"mode": mode, "window_chars": 80})
    events = await collect(pipeline, turn("hi", mode=mode))
    assert text_of(events) == answer
    assert isinstance(events[-2], Finished) and events[-2].finish_reason == "stop"
    assert isinstance(events[-1], Usage) and events[-1].completion_tokens == len(answer.split(" "))
    done = await pipeline.complete(turn("hi"))
    assert done.choices[0].text == answer


@pytest.mark.parametrize(("mode", "relay", "pieces"), [("buffered", "pieces", True), ("buffered", "tokens", False),
                                                   ("async", "pieces", False)])
async def test_buffered_streams_take_the_answer_in_pieces_async_streams_token_by_token(mode, relay, pieces):
    answer = "Classification assigns labels to things. " * 8
    stages = FakeStages(answer=answer)
    pipeline, _ = make_pipeline(stages, streaming={"mode": mode, "buffered_relay": relay, "first_window_chars": 32})
    events = await collect(pipeline, turn("hi", mode=mode))
    assert text_of(events) == answer
    assert stages.requests[0].chunk_chars == (33 if pieces else 0)  # just past a first window: its cut is known


async def test_buffered_stream_releases_a_short_first_window_early():
    answer = "The first words are here, and then a long answer follows " + "with many more words " * 20
    pipeline, _ = make_pipeline(FakeStages(answer=answer), streaming={"first_window_chars": 32, "window_chars": 200})
    events = await collect(pipeline, turn("hi"))
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas[0]) <= 32 and answer.startswith(deltas[0])
    assert max(len(d) for d in deltas) > 64  # later windows grow


async def test_buffered_stream_never_leaks_a_flagged_window_and_aborts_generation():
    clean = "This first part is entirely harmless text. "
    answer = clean + "Now the bad part: you idiot, I will say it again and again " + "and again " * 30
    stages = FakeStages(answer=answer, delay=0.001)
    pipeline, metrics = make_pipeline(stages, streaming={"mode": "buffered", "window_chars": 60, "overlap_chars": 20})
    events = await collect(pipeline, turn("hi"))
    text = text_of(events)
    assert "idiot" not in text
    assert text and clean.startswith(text)  # clean windows before the flag were released
    blocked = [e for e in events if isinstance(e, Blocked)]
    assert blocked and blocked[0].block.direction == "output" and blocked[0].text_sent
    assert stages.closed_early  # generation was aborted, not run to the end
    assert metrics.registry.get_sample_value("chatgate_blocked_engine_seconds_total", {"stage": "output"}) > 0


async def test_async_stream_flows_then_names_the_flagged_span():
    answer = "Fine start of the answer here. You idiot. " + "more words " * 40
    stages = FakeStages(answer=answer, delay=0.001)
    pipeline, _ = make_pipeline(stages, streaming={"window_chars": 40, "overlap_chars": 10})
    events = await collect(pipeline, turn("hi", mode="async"))
    (blocked,) = [e for e in events if isinstance(e, Blocked)]
    span = blocked.block.window
    assert "idiot" in answer[span.start:span.end]


async def test_input_block_streams_the_template():
    stages = FakeStages()
    pipeline, _ = make_pipeline(stages)
    events = await collect(pipeline, turn("I will kill you"))
    assert text_of(events) == ""
    assert isinstance(events[0], Blocked) and events[0].block.template.text == "[template violence/en]"
    assert not events[0].text_sent


async def test_closing_the_stream_early_aborts_generation():
    stages = FakeStages(answer="word " * 200, delay=0.001)
    pipeline, metrics = make_pipeline(stages)
    stream = await pipeline.stream(turn("hi", mode="async"))
    async for _ in stream:
        break
    await stream.aclose()
    assert stages.closed_early
    assert metrics.registry.get_sample_value("chatgate_requests_total", {"outcome": "client_disconnected"}) == 1


async def test_n_choices_are_generated_and_moderated_each_on_its_own():
    stages = FakeStages(answer="A harmless answer that is long enough to be checked.")
    pipeline, _ = make_pipeline(stages)
    answer = await pipeline.complete(turn("hi", n=3, seed=5))
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert sorted(r.seed for r in stages.requests) == [5, 6, 7]  # one seed would give n equal answers
    assert len({r.request_id for r in stages.requests}) == 3
    events = await collect(pipeline, turn("hi", n=2))
    assert {e.choice for e in events if isinstance(e, Finished)} == {0, 1}
    assert text_of(events, 0) == text_of(events, 1) == stages.answer


async def test_metrics_record_stages_and_outcomes():
    pipeline, metrics = make_pipeline(FakeStages())
    await pipeline.complete(turn("hi"))
    await pipeline.complete(turn("you idiot"))
    reg = metrics.registry
    assert reg.get_sample_value("chatgate_requests_total", {"outcome": "answered"}) == 1
    assert reg.get_sample_value("chatgate_requests_total", {"outcome": "input_blocked"}) == 1
    assert reg.get_sample_value("chatgate_stage_latency_seconds_count", {"stage": "input_moderation"}) == 2
    assert reg.get_sample_value("chatgate_moderation_flags_total", {"direction": "input", "category": "harassment"}) == 1


async def test_unreachable_template_stage_falls_back_to_builtin_texts():
    pipeline, metrics = make_pipeline(BrokenStages(fail_after=0))
    answer = await pipeline.complete(turn("I want to cut myself tonight", languages=["fr"]))
    template = answer.choices[0].block.template
    assert (template.category, template.language, template.source) == ("self-harm", "fr", "builtin")
    assert "3114" in answer.choices[0].text
    assert metrics.registry.get_sample_value("chatgate_template_fallback_total") == 1


async def test_generator_failure_is_unavailable_not_a_crash():
    pipeline, metrics = make_pipeline(BrokenStages(fail_after=-1))
    with pytest.raises(GenerationUnavailable):
        await pipeline.complete(turn("hi"))
    with pytest.raises(GenerationUnavailable):
        await pipeline.stream(turn("hi"))
    assert metrics.registry.get_sample_value("chatgate_requests_total", {"outcome": "error"}) == 2


async def test_generator_failure_mid_stream_ends_with_a_failed_event():
    pipeline, metrics = make_pipeline(BrokenStages(fail_after=3))
    events = await collect(pipeline, turn("hi", mode="async"))
    assert isinstance(events[-2], Failed)
    assert metrics.registry.get_sample_value("chatgate_requests_total", {"outcome": "error"}) == 1


async def test_answer_hook_gets_every_finished_turn():
    seen = []

    async def hook(t, answer):
        seen.append((t.completion_id, answer.outcome))

    stages = FakeStages()
    pipeline, _ = make_pipeline(stages)
    pipeline.on_answer = hook
    t1, t2 = turn("hi"), turn("you idiot")
    await pipeline.complete(t1)
    await collect(pipeline, t2)
    await asyncio.sleep(0)
    assert seen == [(t1.completion_id, "answered"), (t2.completion_id, "input_blocked")]


async def test_tokens_the_engine_ran_ahead_with_go_out_as_one_event():
    # the engine runs ahead while the input check takes its time
    stages = FakeStages(answer="many quick words " * 30, input_delay=0.05)
    pipeline, _ = make_pipeline(stages)
    events = await collect(pipeline, turn("hi", mode="async"))
    deltas = [e for e in events if isinstance(e, Delta)]
    assert text_of(events) == stages.answer
    assert len(deltas) < len(stages.answer.split(" ")) / 2
