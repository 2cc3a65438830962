"""Per-request records of a locust run (`--record FILE` / LOADTEST_RECORD): one JSON line per request
with its start time, row, latency, HTTP status, Retry-After and error. Locust's own CSVs aggregate
per row; the fault suite (tools/faults) needs each request to tell a 429/503 with Retry-After from
an unexpected 5xx, and the ids of the jobs it submitted."""
from __future__ import annotations

import json
import re
import time
from typing import Any

_STATUS_IN_ERROR = re.compile(r"HTTP (\d{3})")


def record_of(request_type: str, name: str, response_time: float, response: Any = None,
              context: dict | None = None, exception: BaseException | None = None,
              start_time: float | None = None) -> dict[str, Any]:
    context = context or {}
    status = context.get("status")
    retry_after = context.get("retry_after")
    if response is not None and getattr(response, "status_code", None) is not None:
        status = response.status_code
        retry_after = response.headers.get("retry-after") if getattr(response, "headers", None) else None
    error = repr(exception)[:300] if exception else None
    if status is None and error:  # raised before a status was kept: recover it from "HTTP 503: ..."
        m = _STATUS_IN_ERROR.search(error)
        status = int(m.group(1)) if m else None
    start = start_time if start_time is not None else time.time() - response_time / 1e3
    rec = {"t": round(start, 3), "type": request_type, "name": name, "ms": round(response_time, 1),
           "status": status, "retry_after": retry_after, "error": error}
    rec.update({k: v for k, v in context.items() if k in ("job_id", "job_status")})
    return rec


def install_recorder(events) -> None:
    """Adds `--record FILE` to locust and writes a record per request there (nothing without it)."""
    sink: dict[str, Any] = {}

    @events.init_command_line_parser.add_listener
    def _option(parser):
        parser.add_argument("--record", type=str, env_var="LOADTEST_RECORD", default="",
                            help="write one JSON line per request (status, Retry-After, job id) to this file")

    @events.init.add_listener
    def _open(environment, **_kw):
        path = getattr(environment.parsed_options, "record", "") if environment.parsed_options else ""
        if path:
            sink["file"] = open(path, "a", buffering=1, encoding="utf-8")  # line-buffered: readable mid-run

    @events.request.add_listener
    def _write(request_type, name, response_time, response_length=0, response=None, context=None,
               exception=None, start_time=None, **_kw):
        f = sink.get("file")
        if f is not None:
            f.write(json.dumps(record_of(request_type, name, response_time, response, context, exception,
                                         start_time)) + "\n")

    @events.quitting.add_listener
    def _close(environment, **_kw):
        f = sink.pop("file", None)
        if f is not None:
            f.close()
