"""Arrival batching: who waits, who enters at once, and that a batch enters together."""
from __future__ import annotations

import asyncio

import pytest

from services.generation.arrivals import ArrivalBatcher


async def _arrive(batcher: ArrivalBatcher, at: float, busy: bool, t0: float) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(at - (loop.time() - t0))
    waited = await batcher.admit(engine_busy=busy)
    return loop.time() - t0, waited


async def _run(batcher: ArrivalBatcher, arrivals: list[tuple[float, bool]]) -> tuple[list[float], list[float]]:
    """(arrival time, engine busy) per request -> (when each entered the engine, what admit() returned)."""
    t0 = asyncio.get_running_loop().time()
    out = await asyncio.gather(*(_arrive(batcher, at, busy, t0) for at, busy in arrivals))
    return [e for e, _ in out], [w for _, w in out]


async def test_off_admits_at_once():
    batcher = ArrivalBatcher(quiet_s=0.0, max_s=1.0)
    assert await batcher.admit(engine_busy=True) == 0.0
    assert await batcher.admit(engine_busy=True) == 0.0
    assert batcher.held == 0


async def test_lone_arrivals_enter_at_once_even_while_the_engine_decodes():
    batcher = ArrivalBatcher(quiet_s=0.03, max_s=1.0)
    _, waited = await _run(batcher, [(0.0, True), (0.06, True), (0.12, True)])  # 60 ms apart > quiet
    assert waited == [0.0, 0.0, 0.0]
    assert batcher.held == 0 and batcher.batches == 0


async def test_a_burst_enters_together_after_the_quiet():
    batcher = ArrivalBatcher(quiet_s=0.05, max_s=1.0)
    # a burst 20 ms apart: the first finds nobody before it and enters; the rest wait for the quiet
    # after the last arrival (60 ms + 50 ms), the last one joining although the engine looks idle
    entered, waited = await _run(batcher, [(0.0, False), (0.02, True), (0.04, True), (0.06, False)])
    assert waited[0] == 0.0
    assert max(entered[1:]) - min(entered[1:]) < 0.05  # one batch, entering together
    assert min(entered[1:]) >= 0.06 + 0.05 - 0.005
    assert batcher.held == 3 and batcher.batches == 1


async def test_an_idle_engine_gathers_nobody():
    batcher = ArrivalBatcher(quiet_s=0.05, max_s=1.0)
    _, waited = await _run(batcher, [(0.0, False), (0.01, False)])
    assert waited == [0.0, 0.0]


async def test_steady_arrivals_are_released_by_the_max_wait():
    batcher = ArrivalBatcher(quiet_s=0.05, max_s=0.12)
    # an arrival every 30 ms never leaves 50 ms of quiet: the batch opened at 30 ms goes at 150 ms
    entered, waited = await _run(batcher, [(0.03 * i, True) for i in range(9)])
    assert waited[0] == 0.0 and min(entered[1:]) >= 0.145
    assert batcher.batches >= 2  # released by the max wait, so later arrivals opened a second batch


async def test_a_cancelled_waiter_does_not_block_its_batch():
    batcher = ArrivalBatcher(quiet_s=0.03, max_s=1.0)
    assert await batcher.admit(engine_busy=True) == 0.0  # alone
    gone = asyncio.create_task(batcher.admit(engine_busy=True))
    stays = asyncio.create_task(batcher.admit(engine_busy=True))
    await asyncio.sleep(0.005)
    gone.cancel()
    assert await asyncio.wait_for(stays, 1.0) > 0.02
    with pytest.raises(asyncio.CancelledError):
        await gone


def test_unset_quiet_window_is_on_for_cpu_and_off_for_gpu(monkeypatch):
    from services.generation import engine

    monkeypatch.setattr(engine, "on_gpu", lambda: False)
    assert engine.resolve_arrival_quiet_ms(None) == engine.CPU_ARRIVAL_QUIET_MS > 0
    assert engine.resolve_arrival_quiet_ms(0.0) == 0.0  # the operator's choice wins
    monkeypatch.setattr(engine, "on_gpu", lambda: True)
    assert engine.resolve_arrival_quiet_ms(None) == 0.0
    assert engine.resolve_arrival_quiet_ms(25.0) == 25.0
