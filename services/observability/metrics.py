"""Pipeline metrics behind one small class, with two backends.

Inside Ray Serve replicas only `ray.serve.metrics` reach Prometheus (Ray exports them on its
metrics port with a `ray_` prefix); `prometheus_client` objects created in a replica are not
exported. Outside Ray (unit tests, tools) the prometheus_client backend is used.
Names (before Ray's prefix):
  chatgate_stage_latency_seconds{stage}                 input_moderation|generation|output_moderation|template
  chatgate_request_latency_seconds{endpoint,outcome}    end to end
  chatgate_time_to_first_token_seconds{mode}            as the client sees it (after hold-back)
  chatgate_inter_token_latency_seconds{mode}            between content chunks sent to the client
  chatgate_holdback_delay_seconds                       generated -> released (buffered mode)
  chatgate_generated_tokens_total
  chatgate_requests_total{outcome}                      answered|input_blocked|output_blocked|error|
                                                        invalid_request|client_disconnected
  chatgate_blocked_engine_seconds_total{stage}          engine time spent on requests a check blocked
  chatgate_admission_rejected_total{reason}             full|wait_budget (answered 429)
  chatgate_moderation_flags_total{direction,category}
  chatgate_template_fallback_total                      built-in template served (Redis down)
  chatgate_moderation_failures_total{direction}         a check that could not run
  chatgate_event_loop_lag_seconds                       how late the Router's event loop woke (loop_lag.py)
"""
from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

_SPECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # name: (kind, help, tag keys)
    "chatgate_stage_latency_seconds": ("histogram", "Latency of one pipeline stage", ("stage",)),
    "chatgate_request_latency_seconds": ("histogram", "End-to-end request latency", ("endpoint", "outcome")),
    "chatgate_time_to_first_token_seconds": ("histogram", "Time to first content sent to the client", ("mode",)),
    "chatgate_inter_token_latency_seconds": ("histogram", "Gap between content chunks sent to the client", ("mode",)),
    "chatgate_holdback_delay_seconds": ("histogram", "Delay between generation and release to the client", ()),
    "chatgate_generated_tokens_total": ("counter", "Completion tokens generated", ()),
    "chatgate_requests_total": ("counter", "Chat requests by outcome", ("outcome",)),
    "chatgate_moderation_flags_total": ("counter", "Flagged categories by direction", ("direction", "category")),
    "chatgate_template_fallback_total": ("counter", "Built-in templates served because Redis failed", ()),
    "chatgate_moderation_failures_total": ("counter", "Moderation checks that could not run", ("direction",)),
    "chatgate_blocked_engine_seconds_total": ("counter", "Engine seconds spent on blocked requests", ("stage",)),
    "chatgate_admission_rejected_total": ("counter", "Requests rejected by admission control", ("reason",)),
    "chatgate_event_loop_lag_seconds": ("histogram", "How much later than asked the event loop woke", ()),
}


class _RayBackend:
    def __init__(self) -> None:
        from ray.serve import metrics as m

        self._objs: dict[str, Any] = {}
        for name, (kind, doc, tags) in _SPECS.items():
            if kind == "histogram":
                self._objs[name] = m.Histogram(name, description=doc, boundaries=LATENCY_BUCKETS, tag_keys=tags)
            else:
                self._objs[name] = m.Counter(name, description=doc, tag_keys=tags)

    def observe(self, name: str, value: float, tags: dict[str, str]) -> None:
        self._objs[name].observe(value, tags=tags or None)

    def inc(self, name: str, value: float, tags: dict[str, str]) -> None:
        self._objs[name].inc(value, tags=tags or None)


class _PrometheusBackend:
    def __init__(self, registry: Any = None) -> None:
        import prometheus_client as pc

        self.registry = registry or pc.CollectorRegistry()
        self._objs: dict[str, Any] = {}
        for name, (kind, doc, tags) in _SPECS.items():
            if kind == "histogram":
                self._objs[name] = pc.Histogram(name, doc, tags, buckets=LATENCY_BUCKETS, registry=self.registry)
            else:
                self._objs[name] = pc.Counter(name.removesuffix("_total"), doc, tags, registry=self.registry)

    def _child(self, name: str, tags: dict[str, str]) -> Any:
        obj = self._objs[name]
        return obj.labels(**tags) if tags else obj

    def observe(self, name: str, value: float, tags: dict[str, str]) -> None:
        self._child(name, tags).observe(value)

    def inc(self, name: str, value: float, tags: dict[str, str]) -> None:
        self._child(name, tags).inc(value)


class PipelineMetrics:
    def __init__(self, backend: str = "prometheus", registry: Any = None):
        self._b = _RayBackend() if backend == "ray" else _PrometheusBackend(registry)

    @property
    def registry(self) -> Any:
        return getattr(self._b, "registry", None)

    def stage(self, stage: str, seconds: float) -> None:
        self._b.observe("chatgate_stage_latency_seconds", seconds, {"stage": stage})

    def request(self, endpoint: str, outcome: str, seconds: float) -> None:
        self._b.observe("chatgate_request_latency_seconds", seconds, {"endpoint": endpoint, "outcome": outcome})
        self._b.inc("chatgate_requests_total", 1, {"outcome": outcome})

    def ttft(self, mode: str, seconds: float) -> None:
        self._b.observe("chatgate_time_to_first_token_seconds", seconds, {"mode": mode})

    def inter_token(self, mode: str, seconds: float) -> None:
        self._b.observe("chatgate_inter_token_latency_seconds", seconds, {"mode": mode})

    def holdback(self, seconds: float) -> None:
        self._b.observe("chatgate_holdback_delay_seconds", seconds, {})

    def tokens(self, n: int) -> None:
        if n > 0:
            self._b.inc("chatgate_generated_tokens_total", n, {})

    def flags(self, direction: str, categories: list[str]) -> None:
        for category in categories:
            self._b.inc("chatgate_moderation_flags_total", 1, {"direction": direction, "category": category})

    def template_fallback(self) -> None:
        self._b.inc("chatgate_template_fallback_total", 1, {})

    def moderation_failure(self, direction: str) -> None:
        self._b.inc("chatgate_moderation_failures_total", 1, {"direction": direction})

    def blocked_engine_time(self, stage: str, seconds: float) -> None:
        self._b.inc("chatgate_blocked_engine_seconds_total", max(0.0, seconds), {"stage": stage})

    def loop_lag(self, seconds: float) -> None:
        self._b.observe("chatgate_event_loop_lag_seconds", seconds, {})

    def admission_rejected(self, reason: str) -> None:
        self._b.inc("chatgate_admission_rejected_total", 1, {"reason": reason})
