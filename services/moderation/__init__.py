"""Moderation: an onnxruntime text classifier + a thresholds/on-off policy.

    clf = load_classifier(settings.model_dir, settings.intra_op_threads)   # once per replica
    policy = load_policy(settings)                                        # categories.yaml + overrides
    verdicts = [policy.judge(s) for s in clf.score(texts)]
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from services.moderation.base import ModerationPolicy, ModerationVerdict, TextClassifier, failed_closed_verdict
from services.moderation.categories import CATEGORIES, load_category_defaults
from services.moderation.onnx_classifier import ArtifactError, OnnxTextClassifier

if TYPE_CHECKING:
    from services.config import ModerationSettings

__all__ = [
    "CATEGORIES",
    "ArtifactError",
    "ModerationPolicy",
    "ModerationVerdict",
    "OnnxTextClassifier",
    "TextClassifier",
    "failed_closed_verdict",
    "load_classifier",
    "load_policy",
]


def load_classifier(model_dir: Path, intra_op_threads: int = 1) -> TextClassifier:
    """The built ONNX artifact in `model_dir` (manifest.json + model.onnx), one session, thread-safe."""
    return OnnxTextClassifier(Path(model_dir), intra_op_threads=intra_op_threads)


def load_policy(settings: "ModerationSettings") -> ModerationPolicy:
    """Defaults from categories.yaml (settings.categories_file, else the packaged one) with
    settings.thresholds / disabled_categories on top."""
    defaults = load_category_defaults(settings.categories_file) if settings.categories_file else load_category_defaults()
    return defaults.merged(settings.thresholds, settings.disabled_categories)
