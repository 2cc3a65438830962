"""Router: the FastAPI ingress. Validates requests, then drives the moderation DAG through
DeploymentHandles (InputModeration -> Generator -> OutputModeration, TemplateResponder on a block)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from ray.serve.handle import DeploymentHandle

from services.api.app import create_app
from services.config import Settings, load_settings
from services.generation.types import GenerationRequest, GenerationStep
from services.moderation.base import ModerationVerdict
from services.observability.metrics import PipelineMetrics
from services.pipeline.chat import ChatPipeline
from services.templates.store import Template

log = logging.getLogger("ray.serve")


class HandleStages:
    """services.pipeline.stages.Stages over Ray Serve handles."""

    def __init__(self, input_mod: DeploymentHandle, generator: DeploymentHandle, output_mod: DeploymentHandle, templates: DeploymentHandle):
        self.input_mod, self.output_mod, self.templates = input_mod, output_mod, templates
        self.generator = generator.options(stream=True)

    async def check_input(self, text: str) -> ModerationVerdict:
        return await self.input_mod.check.remote(text)

    async def check_output(self, text: str) -> ModerationVerdict:
        return await self.output_mod.check.remote(text)

    async def check_outputs(self, texts: list[str]) -> list[ModerationVerdict]:
        return await self.output_mod.check_many.remote(texts)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        response = self.generator.stream.remote(request)
        try:
            async for step in response:
                yield step
        finally:
            # Early exit (block, disconnect, error): cancel the replica-side stream -> vLLM abort.
            response.cancel()

    async def template(self, category: str, language: str) -> Template:
        return await self.templates.get.remote(category, language)


class Router:
    def __init__(self, input_moderation: DeploymentHandle, generator: DeploymentHandle,
                 output_moderation: DeploymentHandle, templates: DeploymentHandle,
                 settings: dict[str, Any] | None = None):
        self.settings: Settings = load_settings(settings)
        self.handles = {"input": input_moderation, "generator": generator, "output": output_moderation, "templates": templates}
        self.stages = HandleStages(input_moderation, generator, output_moderation, templates)
        self.metrics = PipelineMetrics(backend="ray")
        self.pipeline = ChatPipeline(self.stages, self.settings, self.metrics, on_decision=_audit_hook(self.settings))

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Streaming mode/window and fail_open change at run time."""
        if "streaming" in user_config:
            self.settings.streaming = self.settings.streaming.model_copy(update=user_config["streaming"])
        if "fail_open" in user_config:
            self.settings.moderation = self.settings.moderation.model_copy(update={"fail_open": user_config["fail_open"]})

    async def moderate(self, texts: list[str]) -> list[ModerationVerdict]:
        return await self.handles["input"].check_many.remote(texts)

    async def readiness(self) -> dict[str, Any]:
        async def probe(name: str, call) -> Any:
            try:
                return await asyncio.wait_for(call, timeout=5)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                return exc

        stats, categories, redis_ok = await asyncio.gather(
            probe("generator", self.handles["generator"].stats.remote()),
            probe("moderation", self.handles["input"].categories.remote()),
            probe("templates", self.handles["templates"].redis_ok.remote()),
        )
        return {
            "model_loaded": not isinstance(stats, Exception),
            "classifier_loaded": not isinstance(categories, Exception),
            # Templates are always servable: from Redis, or the built-in fallback.
            "templates": "redis" if redis_ok is True else "builtin_fallback",
        }

    async def engine_stats(self) -> dict[str, Any]:
        return await self.handles["generator"].stats.remote()

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Ray Serve calls this after __init__: the routes live in services.api.app."""
        return create_app(self)


def _audit_hook(settings: Settings):
    """Send moderation decisions to the audit trail (Celery); None when auditing is off."""
    if not settings.audit.enabled:
        return None
    try:
        from services.audit import AuditEvent, AuditPublisher
    except ImportError:  # pragma: no cover - audit package not installed
        return None
    publisher = AuditPublisher(settings)

    async def record(stage, verdict: ModerationVerdict, request_id: str, text: str, template: Template | None) -> None:
        if not publisher.should_record(verdict.flagged):
            return
        await publisher.publish(AuditEvent(
            ts=time.time(), request_id=request_id, stage=stage, flagged=verdict.flagged,
            categories=verdict.flagged_categories, scores=verdict.category_scores,
            template_category=template.category if template else None,
            template_language=template.language if template else None,
            model=settings.generator.served_model_name, text=text,
        ))

    return record


