"""The Generator replica's bookkeeping, over a fake engine (the real one: tests/system)."""
from __future__ import annotations

import asyncio

from deployments.generator import Generator
from services.config import GeneratorSettings
from services.generation.types import GenerationRequest, GenerationStep


class FakeEngine:
    dtype = "float32"

    def __init__(self, steps: int):
        self.steps = steps
        self.unfinished = 0

    async def stream(self, request):
        self.unfinished += 1
        try:
            for i in range(self.steps):
                await asyncio.sleep(0)
                yield GenerationStep(text="x", completion_tokens=i + 1,
                                     finish_reason="stop" if i == self.steps - 1 else None)
        finally:
            self.unfinished -= 1

    def num_unfinished_requests(self) -> int:
        return self.unfinished

    def shutdown(self) -> None:
        pass


def _generator(steps: int) -> Generator:
    return Generator(GeneratorSettings(), engine=FakeEngine(steps))


def _request() -> GenerationRequest:
    return GenerationRequest(request_id="r1", messages=[{"role": "user", "content": "hi"}], max_tokens=8)


def test_a_stream_read_to_its_end_is_not_counted_as_aborted():
    gen = _generator(3)

    async def read_all():
        return [s async for s in gen.stream(_request())]

    assert len(asyncio.run(read_all())) == 3
    assert gen.stats()["requests_started"] == 1 and gen.stats()["requests_aborted"] == 0


def test_a_stream_closed_early_counts_as_aborted():
    gen = _generator(100)

    async def leave_after_two():
        stream = gen.stream(_request())
        [await stream.__anext__() for _ in range(2)]
        await stream.aclose()  # what Ray Serve does when the router cancels

    asyncio.run(leave_after_two())
    stats = gen.stats()
    assert stats["requests_aborted"] == 1 and stats["unfinished_requests"] == 0


def test_a_cancelled_stream_counts_as_aborted():
    gen = _generator(10_000)

    async def cancel_mid_stream():
        async def consume():
            async for _ in gen.stream(_request()):
                await asyncio.sleep(0)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(cancel_mid_stream())
    assert gen.stats()["requests_aborted"] == 1


def test_an_abort_that_overtakes_the_stream_start_stops_it_before_and_during_generation():
    gen = _generator(100)

    async def abort_first():
        await gen.abort("r1")  # arrives before the stream call: nothing is generated
        return [s async for s in gen.stream(_request())]

    gen.engine.abort = lambda request_id: asyncio.sleep(0)  # vLLM's abort of an id it does not know yet
    assert asyncio.run(abort_first()) == []
    assert gen.stats()["requests_aborted"] == 1 and gen.engine.unfinished == 0

    gen2 = _generator(100)
    gen2.engine.abort = lambda request_id: asyncio.sleep(0)

    async def abort_midway():
        got = []
        async for step in gen2.stream(_request()):
            got.append(step)
            if len(got) == 2:
                await gen2.abort("r1")  # the engine had not registered it when vLLM's abort ran
        return got

    assert len(asyncio.run(abort_midway())) == 2
    assert gen2.stats()["requests_aborted"] == 1 and gen2.engine.unfinished == 0


def test_stats_report_arrival_batching_when_the_engine_has_it():
    from services.generation.arrivals import ArrivalBatcher

    gen = _generator(1)
    assert "arrival_held" not in gen.stats()  # an engine without it (or with it off) reports nothing
    gen.engine.arrivals = ArrivalBatcher(quiet_s=0.03, max_s=0.3)

    async def burst():
        await gen.engine.arrivals.admit(engine_busy=True)  # alone: enters at once
        await asyncio.gather(*(gen.engine.arrivals.admit(engine_busy=True) for _ in range(3)))

    asyncio.run(burst())
    stats = gen.stats()
    assert stats["arrival_batches"] == 1 and stats["arrival_held"] == 3 and stats["arrival_held_seconds"] > 0
