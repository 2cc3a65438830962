"""The registry wheels the lexical stage reads from, opened as zip files (never installed): the data
generator's Wheel, with a lookup that insists the wheel is there."""
from __future__ import annotations

from pathlib import Path

from tools.moderation.data.common import Wheel
from tools.moderation.data.common import find_wheel as find_optional_wheel


def find_wheel(wheels: Path, stem: str) -> Wheel:
    wheel = find_optional_wheel(wheels, stem)
    if wheel is None:
        raise SystemExit(f"expected one {stem} wheel in {wheels}, found none")
    return wheel
