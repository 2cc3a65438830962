"""The fault suite's accounting on made-up records: what counts as answered, rejected, unexpected,
lost; and which targets pass."""
from __future__ import annotations

import json

from tools.faults import figures


def rec(t: float, status, name="chat", ms=100.0, retry_after="2", error=None, typ="POST") -> dict:
    return {"t": t, "type": typ, "name": name, "ms": ms, "status": status, "retry_after": retry_after, "error": error}


def test_load_figures_split_answers_rejections_and_5xx(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [rec(1, 200, retry_after=None), rec(2, 429), rec(3, 503, retry_after=None), rec(4, 500, error="HTTP 500"),
            rec(5, 0, error="ConnectionError"), rec(6, 200, error="stream error"), rec(7, 200, typ="TTFT")]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"cut")
    f = figures.load_figures(figures.read_records(path))  # the cut last line and the TTFT row are skipped
    assert (f["sent"], f["answered"], f["rejected_429_503"], f["unexpected_5xx"], f["other_failures"]) == (6, 1, 2, 1, 2)
    assert f["rejected_without_retry_after"] == 1 and f["failure_samples"]


def test_probe_figures_count_lost_jobs_and_audit_events():
    chats = [{"t": 1, "status": 200, "id": "a", "blocked": True}, {"t": 2, "status": 200, "id": "b", "blocked": True},
             {"t": 3, "status": 200, "id": "c", "blocked": False}, {"t": 4, "status": None, "error": "x"}]
    jobs = [{"t": 1, "status": 202, "id": "j1"}, {"t": 2, "status": 202, "id": "j2"}, {"t": 3, "status": 429, "id": None}]
    f = figures.probe_figures(chats, jobs, {"j1": "succeeded", "j2": "missing"}, audited={"a"})
    assert f["unchecked_text_delivered"] == 1 and f["audit_expected"] == 2 and f["audit_events_lost"] == 1
    assert f["jobs_accepted"] == 2 and f["jobs_lost"] == 1 and f["jobs_lost_states"] == ["missing"]


def test_fault_and_overload_targets():
    good = {"jobs_lost": 0, "jobs_accepted": 3, "audit_events_lost": 0, "audit_expected": 2,
            "unchecked_text_delivered": 0, "unexpected_5xx": 0, "recovery_s": 12.0}
    assert set(figures.fault_targets(good).values()) == {"PASS"}
    slow = dict(good, recovery_s=None, jobs_lost=1)
    t = figures.fault_targets(slow)
    assert t["recovery <= 30 s"] == "MISS" and t["0 jobs lost"] == "MISS"
    base = [rec(i, 200, ms=1000) for i in range(10)]
    over = [rec(i, 200, ms=1500) for i in range(10)] + [rec(i, 429, ms=5) for i in range(5)]
    o = figures.overload_figures(over, base)
    assert o["accepted_p99_ms"] == 1500 and o["unloaded_p99_ms"] == 1000 and o["rejection_p99_ms"] == 5
    assert set(figures.overload_targets(o).values()) == {"PASS"}
    late = figures.overload_figures(over + [rec(20, 429, ms=2500, retry_after=None)], base)
    t = figures.overload_targets(late)
    assert t["rejections within 2 s (p99)"] == "MISS" and t["rejections carry Retry-After"] == "MISS"
    o.update(users=80, capacity=16, seconds=20)
    assert "| overload target |" in figures.render([dict(good, fault="redis", sent=1, answered=1, rejected_429_503=0,
                                                          other_failures=0)], o)
