"""Ratios, issue 14's targets, the regression gate and the report tables, on made-up runs."""
from __future__ import annotations

import pytest

from tools.bench import gate
from tools.bench.report import render
from tools.bench.targets import BARE_BUFFERED, gate_metrics, judge, ratio_rows


def row(target: str, level: int, tok_s: float, e2e: float, ttft=None, first32=None, itl99=None) -> dict:
    d = lambda p50: {"p50": p50, "p90": p50, "p99": p50}  # noqa: E731
    return {"target": target, "level": level, "requests": 8, "errors": 0, "wall_s": 1.0, "req_s": tok_s / 32,
            "tok_s": tok_s, "tok_per_req": 32.0, "e2e": d(e2e), "ttft": d(ttft), "first32": d(first32),
            "itl": {"p50": itl99, "p90": itl99, "p99": itl99}, "loadavg": 1.0, "error_samples": []}


def make_report(slow: float = 1.0, ttft_add: float = 10.0) -> dict:
    bare, cg = [], []
    for lv in (1, 8):
        bare += [row("bare vLLM non-stream", lv, 100, 1000), row("bare vLLM stream", lv, 100, 1000, 100, 300, 50)]
        cg += [row("chatgate non-stream", lv, 100 / slow, 1000 * slow),
               row("chatgate stream", lv, 98 / slow, 1020 * slow, 100 + ttft_add, 310, 55),
               row("chatgate stream-buffered", lv, 97 / slow, 1010 * slow, 340, 340, 200)]
    return {"vllm": {"results": bare}, "chatgate": {"results": cg}, "command": "test",
            "machine": {"loadavg_start": [2.5], "loadavg_end": [1.0], "usable_cpus": 2}}


def test_ratio_rows_pair_each_mode_with_its_bare_row():
    rows = {(r["mode"], r["level"]): r for r in ratio_rows(make_report())}
    assert set(rows) == {(m, lv) for m in ("non-stream", "stream", "stream-buffered") for lv in (1, 8)}
    buffered = rows[("stream-buffered", 1)]
    assert buffered["tok_ratio"] == pytest.approx(0.97)
    assert buffered["ttft_minus_bare_first32_ms"] == pytest.approx(40)  # 340 vs bare's 300 to 32 chars
    assert rows[("stream", 8)]["itl_p99_ratio"] == pytest.approx(1.1)


def test_buffered_rows_compare_with_bare_streams_of_their_own_prompts():
    """Since every (mode, level) gets prompts of its own, bare vLLM streams the buffered row's
    prompts too; an older report without that row falls back to bare's stream row."""
    report = make_report()
    report["vllm"]["results"].append(row(f"bare vLLM {BARE_BUFFERED}", 1, 50, 2000, 150, 250, 60))
    rows = {(r["mode"], r["level"]): r for r in ratio_rows(report)}
    assert rows[("stream-buffered", 1)]["tok_ratio"] == pytest.approx(97 / 50)
    assert rows[("stream-buffered", 1)]["ttft_minus_bare_first32_ms"] == pytest.approx(90)
    assert rows[("stream-buffered", 8)]["tok_ratio"] == pytest.approx(0.97)  # no own row at c=8


def test_targets_pass_and_miss():
    verdicts = {t["measure"]: t["status"] for t in judge(make_report())}
    assert verdicts["buffered stream TTFT p50 - bare time to 32 chars p50, c=1"] == "PASS"
    assert verdicts["async stream added TTFT p50, c=1"] == "PASS"
    assert verdicts["throughput (tok/s) stream, c=8"] == "PASS"
    assert verdicts["throughput (tok/s) stream-buffered, c=32"] == "n/a"  # level not run
    slow = {t["measure"]: t["status"] for t in judge(make_report(slow=1.2, ttft_add=60))}
    assert slow["async stream added TTFT p50, c=8"] == "MISS"
    assert slow["e2e p50 non-stream, c=1"] == "MISS"
    assert slow["throughput (tok/s) non-stream, c=8"] == "MISS"


def test_gate_holds_within_the_band_and_fails_beyond():
    runs = [make_report(1.0), make_report(1.02), make_report(0.99)]
    base = gate.calibrate(runs)
    m = base["metrics"]["tok_ratio non-stream c=8"]
    assert m["better"] == "higher" and m["band"] == pytest.approx(max(gate.FLOOR["ratio"] * gate.BUSY_LEVEL_FACTOR, 1.5 * (1 / 0.99 - 1 / 1.02)), abs=1e-3)
    assert gate.regressions(make_report(1.01), base) == []
    problems = gate.regressions(make_report(3.0, ttft_add=200), base)
    assert any(p.startswith("tok_ratio non-stream c=8") for p in problems)
    assert any(p.startswith("ttft_p50_delta_ms stream c=1") for p in problems)
    assert not any(p.startswith("ttft_p50_delta_ms stream c=8") for p in problems)  # printed, not guarded
    assert "REGRESSED" in gate.render_check(make_report(3.0), base)


def test_a_missing_metric_is_a_regression():
    base = gate.calibrate([make_report()])
    report = make_report()
    report["chatgate"]["results"] = [r for r in report["chatgate"]["results"] if "buffered" not in r["target"]]
    assert any("not measured" in p for p in gate.regressions(report, base))
    assert all(k.split()[1] != "stream-buffered" for k in gate_metrics(report))


def test_render_has_the_three_tables_and_flags_noise():
    text = render(make_report())
    assert "| issue 14 target |" in text and "| chatgate / bare |" in text and "p50/p90/p99" in text
    assert "NOISY" in text


def test_render_shows_where_the_cpu_went_and_who_waited_for_it():
    report = make_report()
    first = report["chatgate"]["results"][0]
    first["cpu"] = {"vLLM worker (model)": 0.92, "Serve Router": 0.05, "machine busy": 1.2, "machine steal": 0.0}
    first["cpu_wait"] = {"vLLM worker (model)": 0.131, "vLLM EngineCore": 0.077}
    text = render(report)
    assert "| CPU, cores used during the level |" in text and "| 0.92 |" in text
    assert "| waiting for a CPU, share of the level | conc | vLLM worker (model) | vLLM EngineCore |" in text
    assert "| chatgate non-stream | 1 | 0.131 | 0.077 |" in text
