"""Per-fault figures from the locust records and the probes, and issue 13's targets (PASS / MISS)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtest.common import percentile

REJECT = (429, 503)


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a killed locust
    return [r for r in out if r.get("type") != "TTFT"]  # a TTFT row repeats its stream's request


def load_figures(records: list[dict]) -> dict[str, Any]:
    """requests sent / answered / rejected (429, 503) / unexpected 5xx / other failures."""
    sent = len(records)
    answered = sum(1 for r in records if r.get("status") == 200 and not r.get("error"))
    rejected = [r for r in records if r.get("status") in REJECT]
    unexpected = [r for r in records if (r.get("status") or 0) >= 500 and r.get("status") not in REJECT]
    other = sent - answered - len(rejected) - len(unexpected)
    samples = sorted({f"{r.get('name')}: {r.get('status')} {(r.get('error') or '')[:160]}"
                      for r in records if not (r.get("status") == 200 and not r.get("error"))})[:5]
    return {"sent": sent, "answered": answered, "rejected_429_503": len(rejected),
            "rejected_without_retry_after": sum(1 for r in rejected if not r.get("retry_after")),
            "unexpected_5xx": len(unexpected), "other_failures": other, "failure_samples": samples}


def in_window(items: list[dict], start: float, end: float) -> list[dict]:
    return [r for r in items if start <= r["t"] < end]


def probe_figures(chats: list[dict], jobs: list[dict], job_state: dict[str, str], audited: set[str]) -> dict[str, Any]:
    blocked = [c for c in chats if c.get("blocked") and c.get("id")]
    unaudited = [c for c in blocked if c["id"] not in audited]
    accepted = [j for j in jobs if j.get("id")]
    lost_jobs = [j["id"] for j in accepted if job_state.get(j["id"]) not in ("succeeded", "failed", "cancelled")]
    return {"abusive_probes": len(chats),
            "unchecked_text_delivered": sum(1 for c in chats if c.get("status") == 200 and not c.get("blocked")),
            "audit_expected": len(blocked), "audit_events_lost": len(unaudited),
            # which ones and when (time.time() of the probe): to line a loss up with the fault's down/up times
            "audit_lost": [{"id": c["id"], "t": round(c["t"], 2)} for c in unaudited],
            "jobs_accepted": len(accepted), "jobs_failed": sum(1 for j in accepted if job_state.get(j["id"]) == "failed"),
            "jobs_lost": len(lost_jobs), "jobs_lost_states": sorted({job_state.get(i, "?") for i in lost_jobs})}


def ms_p99(records: list[dict], ok: bool) -> float | None:
    xs = [r["ms"] for r in records if (r.get("status") == 200 and not r.get("error")) == ok]
    return None if not xs else round(percentile(xs, 99), 1)


def overload_figures(records: list[dict], unloaded: list[dict]) -> dict[str, Any]:
    rejected = [r for r in records if r.get("status") in REJECT]
    out = load_figures(records)
    out.update(accepted_p99_ms=ms_p99(records, True), unloaded_p99_ms=ms_p99(unloaded, True),
               rejection_p99_ms=None if not rejected else round(percentile([r["ms"] for r in rejected], 99), 1))
    return out


def _v(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def fault_targets(f: dict[str, Any], recovery_limit_s: float = 30) -> dict[str, str]:
    rec = f.get("recovery_s")
    return {"0 jobs lost": _v(f["jobs_lost"] == 0 if f.get("jobs_accepted") else None),
            "0 audit events lost": _v(f["audit_events_lost"] == 0 if f.get("audit_expected") else None),
            "0 unchecked text": _v(f["unchecked_text_delivered"] == 0),
            "0 unexpected 5xx": _v(f["unexpected_5xx"] == 0),
            f"recovery <= {recovery_limit_s:g} s": _v(rec is not None and rec <= recovery_limit_s)}


def overload_targets(o: dict[str, Any]) -> dict[str, str]:
    rej, acc, base = o.get("rejection_p99_ms"), o.get("accepted_p99_ms"), o.get("unloaded_p99_ms")
    return {"every request answered or 429/503": _v(o["other_failures"] == 0 and o["unexpected_5xx"] == 0),
            "rejections carry Retry-After": _v(o["rejected_without_retry_after"] == 0 if o["rejected_429_503"] else None),
            "rejections within 2 s (p99)": _v(None if rej is None else rej <= 2000),
            "accepted p99 <= 2x unloaded p99": _v(None if acc is None or base is None else acc <= 2 * base),
            "0 unexpected 5xx": _v(o["unexpected_5xx"] == 0)}


COLUMNS = ("sent", "answered", "rejected_429_503", "unexpected_5xx", "other_failures", "jobs_lost",
           "audit_events_lost", "unchecked_text_delivered", "recovery_s")


def render(faults: list[dict], overload: dict | None) -> str:
    lines = ["| fault | requests sent | answered | rejected 429/503 | unexpected 5xx | other failures | jobs lost "
             "(accepted) | audit events lost (expected) | unchecked text | recovery s | targets |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for f in faults:
        t = fault_targets(f)
        miss = [k for k, v in t.items() if v == "MISS"]
        lines.append(f"| {f['fault']} | {f['sent']} | {f['answered']} | {f['rejected_429_503']} | {f['unexpected_5xx']} | "
                     f"{f['other_failures']} | {f['jobs_lost']} ({f['jobs_accepted']}) | {f['audit_events_lost']} "
                     f"({f['audit_expected']}) | {f['unchecked_text_delivered']} | {f.get('recovery_s', '-')} | "
                     f"{'PASS' if not miss else 'MISS: ' + ', '.join(miss)} |")
    if overload:
        o = overload
        lines += ["", f"Overload ({o['users']} users = 5 x capacity {o['capacity']}, {o['seconds']} s): sent {o['sent']}, "
                  f"answered {o['answered']}, rejected 429/503 {o['rejected_429_503']} "
                  f"({o['rejected_without_retry_after']} without Retry-After), unexpected 5xx {o['unexpected_5xx']}, "
                  f"other failures {o['other_failures']}; rejection p99 {o['rejection_p99_ms']} ms; accepted p99 "
                  f"{o['accepted_p99_ms']} ms vs unloaded p99 {o['unloaded_p99_ms']} ms", "",
                  "| overload target | verdict |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in overload_targets(o).items()]
    return "\n".join(lines)
