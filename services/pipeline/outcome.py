"""What the pipeline decided about one request, and how that is reported."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.moderation.base import ModerationVerdict
from services.pipeline.windows import Window
from services.templates.store import Template

Stage = Literal["input", "output"]


@dataclass
class Block:
    stage: Stage
    verdict: ModerationVerdict
    template: Template
    window: Window | None = None

    @property
    def outcome(self) -> str:
        return f"{self.stage}_blocked"

    def report(self) -> dict[str, Any]:
        """The `chatgate_moderation` field of a blocked response."""
        body: dict[str, Any] = {
            "stage": self.stage,
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
