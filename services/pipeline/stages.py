"""The stage interface the pipeline drives. The Router implements it with Ray Serve handles;
unit tests implement it with fakes."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from services.generation.types import GenerationRequest, GenerationStep
from services.moderation.base import ModerationVerdict
from services.templates.store import Template


class Stages(Protocol):
    async def check_input(self, text: str) -> ModerationVerdict: ...

    async def check_output(self, text: str) -> ModerationVerdict: ...

    async def check_outputs(self, texts: list[str]) -> list[ModerationVerdict]:
        """Several windows of one finished answer, in one call."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        """Streamed steps; closing the iterator early must abort the generation."""
        ...

    async def template(self, category: str, language: str) -> Template: ...
