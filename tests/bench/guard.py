"""Never two live systems at once: the benchmark and the fault suite start their own, so they skip
when this pytest session's `live_app` (tests/conftest.py) is already running."""
from __future__ import annotations

import psutil
import pytest


def skip_if_session_live_app() -> None:
    for child in psutil.Process().children(recursive=True):
        try:
            if any(part.endswith("tools/run.sh") for part in child.cmdline()):
                pytest.skip("this session's live_app is running; run `tools/test.sh tests/bench tests/faults -m slow` alone")
        except psutil.NoSuchProcess:
            continue
