"""The benchmark's prompts: no request repeats one (a repeat is a cache hit for chatgate's checks),
and both systems get the same prompt for the same (mode, level)."""
from loadtest.common import load_prompts
from tools.bench.prompts import candidates, needed, slices

MODES = ["nonstream", "stream", "stream-buffered"]


def test_every_request_of_a_full_run_gets_a_prompt_of_its_own():
    pool = load_prompts("prompts_distinct.txt")
    assert len(set(pool)) == len(pool)
    share = slices(pool, MODES, [1, 8, 32], 8)
    sent = [p for prompts in share.values() for p in prompts]
    assert len(sent) == needed(MODES, [1, 8, 32], 8) <= len(pool)
    assert len(set(sent)) == len(sent)
    assert [len(share[("stream", k)]) for k in ("warmup", "1", "8", "32")] == [32, 8, 8, 32]


def test_bare_vllm_and_chatgate_get_the_same_prompts_per_mode_and_level():
    pool = [f"p{i}" for i in range(200)]
    # bare vLLM skips buffered streams, so the slices are fixed by every mode named, not by those run
    assert slices(pool, MODES, [1, 8], 8)[("stream", "8")] == slices(pool, MODES, [1, 8], 8)[("stream", "8")]
    assert slices(pool, MODES, [1, 8], 8)[("stream-buffered", "1")] != slices(pool, MODES, [1, 8], 8)[("stream", "1")]


def test_a_short_pool_wraps_around():
    share = slices(["a", "b", "c"], ["stream"], [1, 2], 1)
    assert share[("stream", "warmup")] == ["a", "b"] and share[("stream", "2")] == ["a", "b"]


def test_the_pool_comes_from_held_out_requests_in_several_languages():
    texts = candidates()
    assert len(texts) > 500 and len(set(texts)) == len(texts)
    assert any("¿" in t for t in texts) and all("\n" not in t for t in texts)
