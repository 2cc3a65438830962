"""Helpers shared by the locustfile, the benchmark and the tests (no locust import here:
importing locust monkey-patches the process with gevent)."""
from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = "smollm2-135m-instruct"

# user-class key -> (class name in locustfile.py, default weight)
USER_CLASSES: dict[str, tuple[str, int]] = {
    "benign": ("BenignChatUser", 4),
    "stream": ("StreamingChatUser", 3),
    "abusive": ("AbusiveChatUser", 1),
    "moderation": ("ModerationUser", 2),
    "jobs": ("JobsUser", 1),
}
DEFAULT_MIX = "benign,stream,abusive,moderation"  # jobs needs a Celery worker: opt in


def load_prompts(path: str | os.PathLike) -> list[str]:
    """One prompt per line; blank lines and `#` comments skipped. Relative paths: to loadtest/."""
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        p = HERE / p
    prompts = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    prompts = [ln for ln in prompts if ln and not ln.startswith("#")]
    if not prompts:
        raise ValueError(f"no prompts in {p}")
    return prompts


def parse_mix(spec: str | None) -> dict[str, int]:
    """`"benign:4,stream:2,abusive"` -> {"benign": 4, "stream": 2, "abusive": 1}; None/"" -> default mix
    with the default weights; "all" -> every class."""
    spec = (spec or DEFAULT_MIX).strip()
    if spec == "all":
        spec = ",".join(USER_CLASSES)
    mix: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, _, weight = part.partition(":")
        key = key.strip().lower()
        if key not in USER_CLASSES:
            raise ValueError(f"unknown user class {key!r}; choose from {', '.join(USER_CLASSES)}")
        w = int(weight) if weight else USER_CLASSES[key][1]
        if w < 0:
            raise ValueError(f"negative weight for {key}")
        if w:
            mix[key] = w
    if not mix:
        raise ValueError("the user mix is empty")
    return mix


def check_limits(*, requests: int, fail_ratio: float, p95_ms: float | None,
                 max_fail_ratio: float | None, max_p95_ms: float | None, min_requests: int = 1) -> list[str]:
    """The reasons a run breaks its limits (empty list: it passes)."""
    problems = []
    if requests < min_requests:
        problems.append(f"only {requests} requests (< {min_requests})")
    if max_fail_ratio is not None and max_fail_ratio >= 0 and fail_ratio > max_fail_ratio:
        problems.append(f"error rate {fail_ratio:.2%} > {max_fail_ratio:.2%}")
    if max_p95_ms is not None and max_p95_ms > 0 and p95_ms is not None and p95_ms > max_p95_ms:
        problems.append(f"p95 latency {p95_ms:.0f} ms > {max_p95_ms:.0f} ms")
    return problems


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank-with-interpolation percentile (q in 0..100); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
