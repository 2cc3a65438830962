"""Category names and the default policy (services/moderation/categories.yaml)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from services.moderation.base import ModerationPolicy

CATEGORIES_FILE = Path(__file__).with_name("categories.yaml")

# What the classifier emits, in the order of the semantic heads' columns (heads.npz; the build
# records them in the manifest and the loader checks it agrees).
CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
    "illicit",
    "illicit/violent",
    "profanity",
)


def policy_from_mapping(data: dict) -> ModerationPolicy:
    default = float(data.get("default_threshold", 0.5))
    thresholds: dict[str, float] = {}
    disabled: set[str] = set()
    for name, spec in (data.get("categories") or {}).items():
        spec = spec or {}
        if name not in CATEGORIES:
            raise ValueError(f"unknown moderation category in config: {name!r}")
        if "threshold" in spec:
            t = float(spec["threshold"])
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"threshold for {name!r} must be in [0, 1], got {t}")
            thresholds[name] = t
        if spec.get("enabled", True) is False:
            disabled.add(name)
    return ModerationPolicy(thresholds=thresholds, default_threshold=default, disabled=disabled)


@lru_cache(maxsize=4)
def _load(path: str) -> ModerationPolicy:
    return policy_from_mapping(yaml.safe_load(Path(path).read_text()) or {})


def load_category_defaults(path: Path = CATEGORIES_FILE) -> ModerationPolicy:
    return _load(str(path)).model_copy(deep=True)
