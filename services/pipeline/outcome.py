"""What the guard decided about a blocked text, and how that is reported to the client."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.moderation.base import ModerationVerdict
from services.pipeline.windows import Window
from services.templates.store import Template

Direction = Literal["input", "output"]  # which check: the request's or the answer's


@dataclass
class Block:
    direction: Direction
    verdict: ModerationVerdict
    template: Template
    window: Window | None = None  # output blocks: where in the answer

    @property
    def outcome(self) -> str:
        return f"{self.direction}_blocked"

    def report(self) -> dict[str, Any]:
        """The `chatgate_moderation` field of a blocked response. Its key "stage" names the
        direction of the check (input|output); the name is kept for existing clients."""
        body: dict[str, Any] = {
            "stage": self.direction,
            "categories": self.verdict.flagged_categories,
            "category_scores": self.verdict.category_scores,
            "template": {
                "category": self.template.category,
                "language": self.template.language,
                "source": self.template.source,
            },
        }
        if self.window is not None:
            body["flagged_span"] = {"start": self.window.new_start, "end": self.window.end}
        return body
