"""Feedback metrics, with the pipeline metrics' two backends (services/observability/metrics.py):
`ray.serve.metrics` inside a Serve replica (only those reach Ray's metrics port, with a `ray_`
prefix), prometheus_client elsewhere.

  chatgate_feedback_total{kind,verdict,outcome}   kind: rating|preference; verdict: positive|negative|
                                                  neutral (ratings), chosen|rejected (each ranked answer);
                                                  outcome: the judged answer's moderation outcome
  chatgate_feedback_records_total{result}         completion records: written|dropped_queue_full|dropped_error
Thumbs down on `input_blocked`/`output_blocked` answers is the over-blocking signal.
"""
from __future__ import annotations

import sys
from typing import Any

_SPECS: dict[str, tuple[str, tuple[str, ...]]] = {
    "chatgate_feedback_total": ("Feedback received, by kind, verdict and moderation outcome",
                                ("kind", "verdict", "outcome")),
    "chatgate_feedback_records_total": ("Completion records for feedback, by result", ("result",)),
}
_PROM_CACHE: dict[int, dict[str, Any]] = {}  # per registry: prometheus_client refuses duplicate names


def in_serve_replica() -> bool:
    if "ray" not in sys.modules:  # never import Ray just to find out
        return False
    try:
        from ray import serve

        serve.get_replica_context()
        return True
    except Exception:
        return False


def _ray_counters() -> dict[str, Any]:
    from ray.serve import metrics as m

    return {name: m.Counter(name, description=doc, tag_keys=tags) for name, (doc, tags) in _SPECS.items()}


def _prom_counters(registry: Any) -> dict[str, Any]:
    import prometheus_client as pc

    registry = registry or pc.REGISTRY
    if id(registry) not in _PROM_CACHE:
        _PROM_CACHE[id(registry)] = {
            name: pc.Counter(name.removesuffix("_total"), doc, tags, registry=registry)
            for name, (doc, tags) in _SPECS.items()}
    return _PROM_CACHE[id(registry)]


class FeedbackMetrics:
    def __init__(self, backend: str = "auto", registry: Any = None):
        self.ray = backend == "ray" or (backend == "auto" and in_serve_replica())
        self._c = _ray_counters() if self.ray else _prom_counters(registry)

    def _inc(self, name: str, tags: dict[str, str], value: float = 1) -> None:
        counter = self._c[name]
        if self.ray:
            counter.inc(value, tags=tags)
        else:
            counter.labels(**tags).inc(value)

    def feedback(self, kind: str, verdict: str, outcome: str) -> None:
        self._inc("chatgate_feedback_total", {"kind": kind, "verdict": verdict, "outcome": outcome})

    def record(self, result: str, n: int = 1) -> None:
        if n > 0:
            self._inc("chatgate_feedback_records_total", {"result": result}, n)
