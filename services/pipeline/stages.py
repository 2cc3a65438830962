"""The stages the pipeline drives. The Router implements them with Ray Serve handles
(deployments/router.py); unit tests implement them with fakes."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from services.generation.types import GenerationRequest, GenerationStep
from services.pipeline.guard import ModerationStages


class Stages(ModerationStages, Protocol):
    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationStep]:
        """Streamed steps; the first carries prompt_tokens (or an error). Closing the iterator
        early must abort the generation."""
        ...
