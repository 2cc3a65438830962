"""What is recorded per completion (the Router's side of the seam) and what a client may send
as feedback (POST /v1/feedback). Validation and limits live here, before anything is stored."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Outcome = Literal["answered", "input_blocked", "output_blocked", "error"]
Verdict = Literal["positive", "negative", "neutral"]

# chatcmpl-<id>: the Router's ids (uuid hex or a caller's X-Request-ID, at most 96 chars).
COMPLETION_ID = r"^chatcmpl-[A-Za-z0-9._:-]{1,96}$"
MAX_CHOICES = 8  # more than the API's n limit (4), so n can grow without a schema change


class ChoiceRecord(BaseModel):
    index: int
    outcome: Outcome
    categories: list[str] = Field(default_factory=list)
    text: str
    template_category: str | None = None


class CompletionRecord(BaseModel):
    completion_id: str
    api_key_id: str | None = None
    model: str
    created: float  # unix seconds
    messages: list[dict[str, str]]  # the prompt as sent: [{"role", "content"}, ...]
    choices: list[ChoiceRecord]


ChoiceIndex = Annotated[int, Field(ge=0, lt=MAX_CHOICES)]
CompletionId = Annotated[str, Field(pattern=COMPLETION_ID, max_length=106)]


class AnswerRef(BaseModel):
    """One answer: a choice of a completion (rankings may span completions of the same prompt)."""
    model_config = ConfigDict(extra="forbid")

    completion_id: CompletionId
    index: ChoiceIndex = 0


class FeedbackRequest(BaseModel):
    """Exactly one of: `rating` (thumbs), `score` (1-5), `preferred_index` or `ranking` (best first)."""
    model_config = ConfigDict(extra="forbid")

    completion_id: CompletionId | None = None
    choice_index: ChoiceIndex = 0
    rating: Literal["up", "down"] | None = None
    score: Annotated[int, Field(ge=1, le=5)] | None = None
    preferred_index: ChoiceIndex | None = None
    ranking: Annotated[list[ChoiceIndex | AnswerRef], Field(min_length=2, max_length=MAX_CHOICES)] | None = None
    # The server applies feedback.reason_max_chars too; this bounds what is even parsed.
    reason: Annotated[str, Field(max_length=10_000)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> FeedbackRequest:
        given = [k for k in ("rating", "score", "preferred_index", "ranking") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of rating, score, preferred_index, ranking")
        if self.completion_id is None and not (self.ranking and all(isinstance(r, AnswerRef) for r in self.ranking)):
            raise ValueError("completion_id is required (unless every ranking entry names its completion)")
        if self.ranking is not None and len(set(self.ranked())) != len(self.ranking):
            raise ValueError("ranking names the same answer twice")
        return self

    @property
    def kind(self) -> Literal["rating", "preference"]:
        return "rating" if self.rating is not None or self.score is not None else "preference"

    def verdict(self) -> Verdict | None:
        """Ratings only: thumbs up / score 4-5 positive, thumbs down / score 1-2 negative."""
        if self.rating is not None:
            return "positive" if self.rating == "up" else "negative"
        if self.score is not None:
            return "positive" if self.score >= 4 else "negative" if self.score <= 2 else "neutral"
        return None

    def ranked(self) -> list[tuple[str, int]]:
        """Preferences as (completion_id, index), best first. `preferred_index` beats the
        completion's other choices, which the store fills in (it knows how many there are)."""
        if self.preferred_index is not None:
            return [(str(self.completion_id), self.preferred_index)]
        return [(r.completion_id, r.index) if isinstance(r, AnswerRef) else (str(self.completion_id), r)
                for r in self.ranking or []]
