"""The benchmark's report helpers (no system started)."""
from pathlib import Path

from tools.bench.systems import engine_settings, serve_mode_of

THROUGHPUT_LOG = """\
(ServeController pid=1) INFO serve 1 -- Throughput optimized Ray Serve enabled with the following configurations:
(ServeController pid=1)   \u2022 Direct ingress enabled
(ServeController pid=1)   \u2022 gRPC communication enabled
"""


def test_serve_mode_names_the_data_path(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("(ServeController pid=1) INFO serve 1 -- Controller starting\n")
    assert serve_mode_of(log, {}).startswith("classic")
    log.write_text(THROUGHPUT_LOG)
    assert serve_mode_of(log, {}) == ("throughput-optimized, HAProxy ingress: Direct ingress enabled; "
                                      "gRPC communication enabled")
    assert "Serve proxy" in serve_mode_of(log, {"RAY_SERVE_ENABLE_HA_PROXY": "0"})
    assert serve_mode_of(tmp_path / "missing.log", {}).startswith("classic")


def test_bare_vllm_gets_the_generator_settings_serve_run_would_resolve(monkeypatch) -> None:
    monkeypatch.setenv("CHATGATE_GENERATOR__CPU_SPIN_SLEEP_MS", "2")
    monkeypatch.setenv("CHATGATE_GENERATOR__MAX_MODEL_LEN", "4096")  # the file's args win over the environment
    gen = engine_settings()
    assert gen.cpu_spin_sleep_ms == 2 and gen.max_model_len == 2048


def test_stage_means_read_the_loop_lag_with_a_p99_bound(monkeypatch) -> None:
    import httpx

    from tools.bench import systems

    text = """\
# TYPE ray_chatgate_event_loop_lag_seconds histogram
ray_chatgate_event_loop_lag_seconds_bucket{le="0.001"} 90.0
ray_chatgate_event_loop_lag_seconds_bucket{le="0.05"} 98.0
ray_chatgate_event_loop_lag_seconds_bucket{le="0.1"} 100.0
ray_chatgate_event_loop_lag_seconds_bucket{le="+Inf"} 100.0
ray_chatgate_event_loop_lag_seconds_count 100.0
ray_chatgate_event_loop_lag_seconds_sum 0.5
# TYPE ray_chatgate_stage_latency_seconds histogram
ray_chatgate_stage_latency_seconds_bucket{stage="input_moderation",le="0.05"} 4.0
ray_chatgate_stage_latency_seconds_bucket{stage="input_moderation",le="+Inf"} 4.0
ray_chatgate_stage_latency_seconds_count{stage="input_moderation"} 4.0
ray_chatgate_stage_latency_seconds_sum{stage="input_moderation"} 0.1
"""
    monkeypatch.setattr(httpx, "get", lambda *a, **k: httpx.Response(200, text=text))
    means = systems.scrape_stage_means("http://metrics")
    assert means["router_loop_lag"] == {"mean_ms": 5.0, "count": 100, "p99_le_ms": 100.0}
    assert means["input_moderation"]["mean_ms"] == 25.0 and means["input_moderation"]["p99_le_ms"] == 50.0


def test_burst_gaps_names_the_first_tokens_inside_a_gap() -> None:
    from tools.bench.burst_gaps import report

    # two streams decode from 0.1 s; a third's prefill stalls them until 0.9 s, where its first token lands
    streams = [[0.1, 0.15, 0.9, 0.95], [0.1, 0.16, 0.9], [0.9, 0.95]]
    text = report(streams, "b", top=1)
    assert "first tokens 100-900 ms" in text and "gap   750 ms from   150 to   900 ms: 1 streams' first tokens" in text
