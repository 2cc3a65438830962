"""Composes the chatgate Serve application (the `import_path` in deployments.yaml).

The classes in this package are thin wrappers; this is the one place that turns them into
deployments and wires the DAG: Router -> InputModeration -> Generator -> OutputModeration,
with TemplateResponder on a block. Settings are validated once, here, and each deployment gets
its typed section. Replicas, CPUs, queue bounds and user_config come from deployments.yaml.
"""
from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from deployments.generator import Generator
from deployments.moderation import Moderation
from deployments.router import Router
from deployments.templates import TemplateResponder
from services.config import load_settings


def build_app(args: dict[str, Any] | None = None) -> Application:
    settings = load_settings(args)  # env + deployments.yaml args; a bad value fails the deploy here
    moderation = serve.deployment(Moderation)
    input_mod = moderation.options(name="InputModeration").bind(settings.moderation, "input")
    output_mod = moderation.options(name="OutputModeration").bind(settings.moderation, "output")
    generator = serve.deployment(Generator, name="Generator", health_check_timeout_s=300).bind(settings.generator)
    templates = serve.deployment(TemplateResponder, name="TemplateResponder").bind(settings.templates)
    router = serve.deployment(serve.ingress()(Router), name="Router")
    return router.bind(input_mod, generator, output_mod, templates, settings)
