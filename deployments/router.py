"""Router: the FastAPI ingress. Binds the pipeline (services/) to the other deployments through
DeploymentHandles: InputModeration, Generator, OutputModeration, TemplateResponder. The checks
named in moderation.router_checks run in a scanner process the Router owns instead (LocalChecks)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from ray.serve.handle import DeploymentHandle

from services.api.app import create_app
from services.config import ModerationSettings, RouterRuntimeConfig, Settings
from services.generation.types import GenerationRequest, GenerationStep
from services.moderation.base import ModerationVerdict
from services.moderation.policy_mirror import PolicyMirror
from services.moderation.process import ScannerProcess
from services.observability.loop_lag import LoopLagMonitor
from services.observability.metrics import PipelineMetrics
from services.pipeline.chat import ChatPipeline
from services.pipeline.errors import ModerationUnavailable
from services.pipeline.guard import Guard
from services.pipeline.hooks import answer_hook, audit_hook
from services.templates import language
from services.templates.store import Template

log = logging.getLogger("ray.serve")


class LocalChecks:
    """The checks named in moderation.router_checks: scored in scanner processes the Router owns (one
    for both directions, or one each: moderation.router_scanners), judged by the policy of the
    deployment that would have run them (re-read in the background)."""

    def __init__(self, settings: ModerationSettings, input_mod: DeploymentHandle, output_mod: DeploymentHandle):
        def start() -> ScannerProcess:
            return ScannerProcess(settings.model_dump_json(), max_batch=settings.max_batch_size)

        directions = sorted(set(settings.router_checks))
        shared = start() if settings.router_scanners == "shared" else None
        self.scanners = {d: shared or start() for d in directions}
        self.policies = {d: PolicyMirror(h.current_policy.remote, settings.policy_refresh_s)
                         for d, h in (("input", input_mod), ("output", output_mod))}

    async def moderate_input(self, texts: list[str]) -> ModerationVerdict:
        scores, policy = await asyncio.gather(self.scanners["input"].scan_input(texts), self.policies["input"].get())
        return policy.judge(scores)

    async def moderate_output(self, request: str, texts: list[str]) -> list[ModerationVerdict]:
        scores = await asyncio.gather(*(self.scanners["output"].scan_answer(request, t) for t in texts))
        policy = await self.policies["output"].get()
        return [policy.judge(s) for s in scores]

    async def probe(self) -> None:
        """Readiness: every scanner process loaded and scoring (the first probes wait for the load)."""
        await asyncio.gather(*(s.scan_input(["ready?"]) for s in self.processes()))

    def close(self) -> None:
        for scanner in self.processes():
            scanner.close()

    def processes(self) -> list[ScannerProcess]:
        return list(dict.fromkeys(self.scanners.values()))  # a shared one once


class HandleStages:
    """services.pipeline.stages.Stages over Ray Serve handles (and the Router's own checks)."""

    def __init__(self, input_mod: DeploymentHandle, generator: DeploymentHandle, output_mod: DeploymentHandle,
                 templates: DeploymentHandle, local: LocalChecks | None = None):
        self.input_mod, self.output_mod, self.templates = input_mod, output_mod, templates
        self.generator = generator.options(stream=True)
        self._generator_calls = generator
        self._aborts: set[asyncio.Task] = set()
        self.local = local

    async def moderate_input(self, texts: list[str]) -> ModerationVerdict:
        if self.local and "input" in self.local.scanners:
            return await self.local.moderate_input(texts)
        return await self.input_mod.moderate_input.remote(texts)

    async def moderate_output(self, request: str, texts: list[str]) -> list[ModerationVerdict]:
        if self.local and "output" in self.local.scanners:
            return await self.local.moderate_output(request, texts)
        return await self.output_mod.moderate_output.remote(request, texts)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        response = self.generator.stream.remote(request)
        ended = False
        try:
            async for step in response:
                yield step
            ended = True
        finally:
            if not ended:
                # Early exit (block, disconnect, error): cancel the replica-side stream -> vLLM abort,
                # and say so explicitly too: a cancel that overtakes the stream's start is lost.
                response.cancel()
                self._abort(request.request_id)

    def _abort(self, request_id: str) -> None:
        async def call() -> None:
            try:
                await self._generator_calls.abort.remote(request_id)
            except Exception as exc:  # noqa: BLE001 - the stream's cancel is still on its way
                log.warning("explicit abort of %s failed: %r", request_id, exc)

        task = asyncio.ensure_future(call())
        self._aborts.add(task)
        task.add_done_callback(self._aborts.discard)

    async def template(self, category: str, languages: list[str]) -> Template:
        return await self.templates.get.remote(category, languages)


class Router:
    def __init__(self, input_moderation: DeploymentHandle, generator: DeploymentHandle,
                 output_moderation: DeploymentHandle, templates: DeploymentHandle, settings: Settings):
        self.settings = settings
        self.handles = {"input": input_moderation, "generator": generator, "templates": templates}
        self.metrics = PipelineMetrics(backend="ray")
        self.local = (LocalChecks(settings.moderation, input_moderation, output_moderation)
                      if settings.moderation.router_checks else None)
        stages = HandleStages(input_moderation, generator, output_moderation, templates, self.local)
        self._audit = audit_hook(settings)
        self.guard = Guard(stages, settings.guard, self.metrics, settings.templates, on_decision=self._audit)
        self.recorder = _recorder(settings)
        self.pipeline = ChatPipeline(stages, self.guard, settings.streaming, settings.api.admission, self.metrics,
                                     on_answer=answer_hook(settings, self.recorder) if self.recorder else None)
        if settings.templates.detect_language_min_confidence <= 1:
            language.warm()  # ~0.9 s here, not on the first request's event loop

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Streaming windows/mode and the guard's fail-open/timeouts change at run time."""
        self.settings = RouterRuntimeConfig.model_validate(user_config).apply(self.settings)
        self.pipeline.reconfigure(self.settings.streaming)
        self.guard.settings = self.settings.guard
        log.info("router reconfigured: streaming=%s guard=%s", self.settings.streaming, self.settings.guard)

    async def moderate(self, texts: list[str]) -> list[ModerationVerdict]:
        """/v1/moderations, on the InputModeration deployment (it can scale out for this endpoint)."""
        try:
            return await self.handles["input"].moderate_many.remote(texts)
        except Exception as exc:  # replica killed or restarting (ActorUnavailableError, RayActorError)
            log.warning("/v1/moderations: the moderation stage failed (%r); answering 503", exc)
            raise ModerationUnavailable() from exc

    async def readiness(self) -> dict[str, Any]:
        async def probe(call) -> Any:
            try:
                return await asyncio.wait_for(call, timeout=5)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                return exc

        async def local_scan() -> Any:
            return await self.local.probe() if self.local else None

        stats, categories, redis_ok, local = await asyncio.gather(
            probe(self.handles["generator"].stats.remote()),
            probe(self.handles["input"].categories.remote()),
            probe(self.handles["templates"].redis_ok.remote()),
            probe(local_scan()),
        )
        return {
            "model_loaded": not isinstance(stats, Exception),
            "classifier_loaded": not isinstance(categories, Exception) and not isinstance(local, Exception),
            # Templates are always servable: from Redis, or the built-in fallback.
            "templates": "redis" if redis_ok is True else "builtin_fallback",
        }

    async def engine_stats(self) -> dict[str, Any]:
        return await self.handles["generator"].stats.remote()

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Ray Serve calls this after __init__: the routes live in services.api (and services.web)."""
        from services.web import create_web_routes

        app = create_app(self, extra_routers=[create_web_routes(self.settings, self.recorder)])
        lag = LoopLagMonitor(self.metrics)

        @app.middleware("http")
        async def _watch_the_loop(request, call_next):  # started from inside the replica's loop
            lag.ensure_started()
            return await call_next(request)

        return app

    def __del__(self) -> None:
        # Flush what the audit trail and the completion records still hold (graceful shutdown).
        local = getattr(self, "local", None)
        for closer in (getattr(getattr(self, "_audit", None), "publisher", None), getattr(self, "recorder", None),
                       local):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001 - shutting down
                    pass


def _recorder(settings: Settings):
    if not settings.feedback.enabled:
        return None
    from services.feedback import CompletionRecorder

    return CompletionRecorder(settings)
