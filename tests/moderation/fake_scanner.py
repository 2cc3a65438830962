"""A scanner the scanner-process tests start in a child process (importable there by name).

Each score row carries the child's pid, and some texts misbehave on purpose."""
from __future__ import annotations

import os
import time


class FakeScanner:
    def _row(self, text: str) -> dict[str, float]:
        if "crash" in text:
            os._exit(3)
        if "hang" in text:
            time.sleep(60)
        if "slow" in text:
            time.sleep(0.5)
        if "boom" in text:
            raise ValueError("boom")
        return {"harassment": 0.9 if "idiot" in text else 0.1, "pid": float(os.getpid())}

    def scan_inputs(self, conversations):
        return [self._row(" ".join(c)) for c in conversations]

    def scan_answers(self, pairs):
        return [self._row(f"{request} {answer}") for request, answer in pairs]


def make(settings_json: str) -> FakeScanner:
    if "refuse" in settings_json:
        raise FileNotFoundError("no model here")
    return FakeScanner()
