"""services.moderation.process: a scanner in a child process (batching, failures, restarts), with a
fake scanner; the last test runs the real built artefact there and compares it with in-process scores."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest

from services.moderation.process import ScanFailed, ScannerProcess, ScannerUnavailable

FAKE = "tests.moderation.fake_scanner:make"
pytestmark = pytest.mark.asyncio


@pytest.fixture
def process():
    made: list[ScannerProcess] = []

    def start(settings_json: str = "{}", **kw) -> ScannerProcess:
        made.append(ScannerProcess(settings_json, factory=FAKE, **kw))
        return made[-1]

    yield start
    for p in made:
        p.close()


async def test_concurrent_calls_in_batches_of_at_most_max_batch_each_get_their_own_scores(process):
    proc = process(max_batch=2)
    rows = await asyncio.gather(*(proc.scan_input(["hello", f"you idiot {i}"]) for i in range(5)))
    assert [r["harassment"] for r in rows] == [0.9] * 5
    answers = await asyncio.gather(proc.scan_answer("q", "fine"), proc.scan_answer("q", "idiot"))
    assert [a["harassment"] for a in answers] == [0.1, 0.9]


async def test_each_call_of_a_batch_is_answered_as_soon_as_it_is_scored(process):
    """The first caller of a batch does not wait for the last one's scoring."""
    proc = process()
    await proc.scan_input(["hello"])  # loaded
    busy = asyncio.ensure_future(proc.scan_input(["slow"]))  # the child works on this one alone...
    await asyncio.sleep(0.1)
    fast, slow = proc.scan_input(["hello"]), proc.scan_input(["slow"])  # ...so these two go as one batch
    done: dict[str, float] = {}

    async def timed(name, call):
        await call
        done[name] = asyncio.get_running_loop().time()

    await asyncio.gather(busy, timed("fast", fast), timed("slow", slow))
    assert done["slow"] - done["fast"] > 0.3


async def test_the_child_carries_a_title_that_ps_and_the_tools_find(process):
    import psutil

    from services.moderation.process import PROCESS_TITLE

    pid = int((await process().scan_input(["hello"]))["pid"])
    assert PROCESS_TITLE in " ".join(psutil.Process(pid).cmdline())


async def test_an_item_that_raises_fails_its_caller_only_and_the_process_lives_on(process):
    proc = process()
    before = await proc.scan_input(["hello"])
    bad, good = await asyncio.gather(proc.scan_input(["boom"]), proc.scan_input(["hello"]), return_exceptions=True)
    assert isinstance(bad, ScanFailed) and "boom" in str(bad)
    assert good["harassment"] == 0.1
    after = await proc.scan_input(["hello"])
    assert after["pid"] == before["pid"] and proc.restarts == 0


async def test_a_dead_child_fails_its_callers_and_is_started_again(process):
    proc = process(restart_backoff_s=0)
    first = await proc.scan_input(["hello"])
    with pytest.raises(ScannerUnavailable, match="died"):
        await proc.scan_input(["crash"])
    again = await proc.scan_input(["hello"])
    assert again["pid"] != first["pid"] and proc.restarts == 1 and proc.alive()


async def test_a_child_killed_while_idle_is_started_again_by_the_next_call_which_succeeds(process):
    proc = process(restart_backoff_s=0)
    first = await proc.scan_input(["hello"])
    os.kill(int(first["pid"]), signal.SIGKILL)
    proc._child.proc.join(5)
    again = await proc.scan_input(["you idiot"])  # waits for the new child's load instead of failing
    assert again["harassment"] == 0.9 and again["pid"] != first["pid"] and proc.restarts == 1


async def test_a_hung_child_times_out_and_is_replaced(process):
    proc = process(call_timeout_s=2, restart_backoff_s=0)
    await proc.scan_input(["hello"])  # loaded (the load itself may take longer than 2 s)
    with pytest.raises(ScannerUnavailable, match="no answer"):
        await proc.scan_input(["hang"])
    assert (await proc.scan_input(["hello"]))["harassment"] == 0.1 and proc.restarts == 1


async def test_a_scanner_that_cannot_load_is_unavailable_and_retried_only_after_the_backoff(process):
    proc = process("refuse", restart_backoff_s=3600)
    with pytest.raises(ScannerUnavailable, match="failed to load"):
        await proc.scan_input(["hello"])
    with pytest.raises(ScannerUnavailable, match="restarting"):
        await proc.scan_input(["hello"])
    assert proc.restarts == 0


@pytest.mark.integration
async def test_the_real_scanner_scores_the_same_in_its_process():
    from services.config import ModerationSettings
    from services.moderation.scan import load_scanner

    settings = ModerationSettings()
    if not (settings.model_dir / "encoder.onnx").is_file():
        pytest.fail(f"no built classifier at {settings.model_dir}: run `tools/setup.sh classifier` first")
    texts = [["Write a haiku about autumn"], ["How do I make a bomb?"], ["system: be nice", "Ｙｏｕ ａｒｅ ａｎ ｉｄｉｏｔ"]]
    pairs = [("How do I make a bomb?", "Sure! Step 1: get the parts."), ("Write a haiku", "Leaves fall, soft and red.")]
    local = load_scanner(settings)
    proc = ScannerProcess(settings.model_dump_json())
    try:
        remote_in = await asyncio.gather(*(proc.scan_input(t) for t in texts))
        remote_out = await asyncio.gather(*(proc.scan_answer(r, a) for r, a in pairs))
    finally:
        proc.close()
    for got, want in zip(remote_in + remote_out, local.scan_inputs(texts) + local.scan_answers(pairs)):
        assert got == pytest.approx(want, abs=1e-6)
