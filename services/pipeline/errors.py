"""What the pipeline raises; services/api maps each to an HTTP status in OpenAI's error shape."""
from __future__ import annotations


class PipelineError(Exception):
    code = "pipeline_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.param = message, param
        if code:
            self.code = code


class InvalidTurn(PipelineError):
    """The turn cannot be answered as asked (e.g. longer than the model's context): a 400."""

    code = "invalid_request"


class GenerationUnavailable(PipelineError):
    """The generator failed or did not answer in time: a 503 the client may retry."""

    code = "generator_unavailable"

    def __init__(self, message: str = "The model is temporarily unavailable. Please retry.", **kw):
        super().__init__(message, **kw)


class ModerationUnavailable(PipelineError):
    """The moderation stage could not score a /v1/moderations call (its replica died or is
    restarting): a 503 the client may retry, not a 500."""

    code = "moderation_unavailable"

    def __init__(self, message: str = "Moderation is temporarily unavailable. Please retry.", **kw):
        super().__init__(message, **kw)
