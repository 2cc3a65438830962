"""Per-request records of a locust run (loadtest/record.py), the fault suite's raw data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadtest.record import record_of

ROOT = Path(__file__).resolve().parents[2]


class FakeResponse:
    def __init__(self, status: int, headers: dict):
        self.status_code, self.headers = status, headers


def test_record_keeps_status_retry_after_and_job_id():
    r = record_of("POST", "chat", 12.34, FakeResponse(429, {"retry-after": "2"}), start_time=100.0)
    assert (r["status"], r["retry_after"], r["t"], r["ms"]) == (429, "2", 100.0, 12.3)
    r = record_of("JOB", "job completion", 5.0, None, {"job_id": "j1", "job_status": "succeeded", "x": 1})
    assert r["job_id"] == "j1" and r["job_status"] == "succeeded" and "x" not in r


def test_record_recovers_status_from_the_error_text():
    r = record_of("STREAM", "chat stream", 1.0, None, {"status": None}, RuntimeError("HTTP 503: busy"))
    assert r["status"] == 503 and "busy" in r["error"]


def test_locust_writes_one_record_per_request(tmp_path):
    """A real headless locust run against a closed port: every request recorded, none answered."""
    rec = tmp_path / "rec.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless", "-H", "http://127.0.0.1:9",
         "-u", "2", "-r", "2", "-t", "3s", "--mix", "moderation,stream", "--think-time", "0.1",
         "--record", str(rec), "--only-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    records = [json.loads(line) for line in rec.read_text().splitlines()]
    assert records, out.stderr[-2000:]
    assert {r["name"] for r in records} <= {"moderations", "chat stream"}
    assert all(r["status"] in (0, None) and r["error"] for r in records)
