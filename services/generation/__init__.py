"""Text generation: the request/step types shared with the router, and the vLLM engine wrapper."""
from services.generation.types import GenerationRequest, GenerationStep

__all__ = ["GenerationRequest", "GenerationStep"]
