"""The moderation contract: a classifier scores texts per category; a policy turns scores into a verdict.

Every classifier (ONNX model, test fake) implements `TextClassifier`; everything downstream
(deployments, API, streaming guard) only sees `ModerationVerdict`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field


@runtime_checkable
class TextClassifier(Protocol):
    """Texts in, one {category: probability in [0, 1]} per text out. Must be batch-capable."""

    categories: tuple[str, ...]

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


class ModerationVerdict(BaseModel):
    """OpenAI-shaped moderation result for one text."""

    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]

    @property
    def flagged_categories(self) -> list[str]:
        return [c for c, hit in self.categories.items() if hit]

    def _highest(self, categories: list[str]) -> str | None:
        return max(categories, key=lambda c: self.category_scores.get(c, 0.0)) if categories else None

    def top_category(self) -> str | None:
        """The flagged category with the highest score."""
        return self._highest(self.flagged_categories)

    def template_category(self) -> str | None:
        """The category whose template the user sees: self-harm first whatever else scored higher
        (a person at risk gets the text that offers support, not a refusal), else the top one."""
        self_harm = [c for c in self.flagged_categories if c.split("/")[0] == "self-harm"]
        return self._highest(self_harm) or self.top_category()


class ModerationPolicy(BaseModel):
    """Thresholds and on/off per category; changeable at run time (deployment user_config)."""

    thresholds: dict[str, float] = Field(default_factory=dict)
    default_threshold: float = 0.5
    disabled: set[str] = Field(default_factory=set)

    def threshold(self, category: str) -> float:
        return self.thresholds.get(category, self.default_threshold)

    def judge(self, scores: Mapping[str, float]) -> ModerationVerdict:
        hits = {
            c: (c not in self.disabled and s >= self.threshold(c)) for c, s in scores.items()
        }
        return ModerationVerdict(
            flagged=any(hits.values()),
            categories=hits,
            category_scores={c: round(float(s), 6) for c, s in scores.items()},
        )

    def merged(self, thresholds: Mapping[str, float], disabled: Sequence[str] = ()) -> "ModerationPolicy":
        """A copy with overrides applied (config file defaults + user_config overrides)."""
        return ModerationPolicy(
            thresholds={**self.thresholds, **thresholds},
            default_threshold=self.default_threshold,
            disabled=self.disabled | set(disabled),
        )


def failed_open_verdict() -> ModerationVerdict:
    """What a check that could not run returns when failing open: passed, scores unknown."""
    return ModerationVerdict(flagged=False, categories={}, category_scores={})


def failed_closed_verdict(categories: Sequence[str], reason_category: str = "moderation_unavailable") -> ModerationVerdict:
    """What a check that could not run returns when failing closed: flagged, scores unknown."""
    cats = {c: False for c in categories}
    cats[reason_category] = True
    return ModerationVerdict(flagged=True, categories=cats, category_scores={reason_category: 1.0})
