"""Generator replica: one vLLM AsyncLLM engine; streams GenerationSteps to the router."""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from deployments.cpu_priority import engine_load_cores
from services.config import GeneratorSettings
from services.generation.engine import VLLMGenerator
from services.generation.types import GenerationRequest, GenerationStep


class Generator:
    def __init__(self, settings: GeneratorSettings, engine: VLLMGenerator | None = None):
        self.settings = settings
        if engine is None:  # tests pass a fake engine
            with engine_load_cores(settings, "Generator"):  # (run.sh pins the rest of a one-host run)
                engine = VLLMGenerator(settings)
        self.engine = engine
        self.requests_started = 0
        self.requests_aborted = 0  # streams that ended before the engine did (client gone, blocked)
        self._aborted: OrderedDict[str, None] = OrderedDict()  # recent abort() ids, bounded

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        # When the router cancels this stream (client gone, blocked), the cancellation reaches
        # engine.stream(), which aborts the vLLM request and frees its KV cache.
        self.requests_started += 1
        ended = False
        try:
            if request.request_id in self._aborted:  # the abort overtook the stream's start
                return
            async for step in self.engine.stream(request):
                if request.request_id in self._aborted:  # closing engine.stream() aborts vLLM
                    return
                yield step
            ended = True
        finally:
            if not ended:  # closed or cancelled before the engine finished: vLLM aborted it
                self.requests_aborted += 1

    async def abort(self, request_id: str) -> None:
        """The Router's explicit abort beside cancelling the stream: a cancel sent while the stream
        call is still on its way (an input block that came back in a few ms) can be lost in the
        hop, and then the engine would generate for a request nobody reads."""
        self._aborted[request_id] = None
        while len(self._aborted) > 4096:
            self._aborted.popitem(last=False)
        await self.engine.abort(request_id)

    def stats(self) -> dict[str, Any]:
        return {
            "model": self.settings.served_model_name,
            "dtype": self.engine.dtype,
            "requests_started": self.requests_started,
            "requests_aborted": self.requests_aborted,
            "unfinished_requests": self.engine.num_unfinished_requests(),
            **self._arrival_stats(),
        }

    def _arrival_stats(self) -> dict[str, Any]:
        arrivals = getattr(self.engine, "arrivals", None)  # fake engines in tests have none
        if arrivals is None or not arrivals.enabled:
            return {}
        return {"arrival_batches": arrivals.batches, "arrival_held": arrivals.held,
                "arrival_held_seconds": round(arrivals.held_seconds, 3)}

    async def check_health(self) -> None:
        """Ray Serve calls this periodically; a dead engine fails it and the replica restarts."""
        await asyncio.wait_for(self.engine.check_health(), timeout=10)

    def __del__(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.shutdown()
