"""Schema-based fuzzing of chatgate's OpenAPI spec (schemathesis): no request may get a 5xx, and the
engine must keep no unfinished request afterwards (GET /admin/engine), as issue 13 asks.

    python -m tools.faults.fuzz --url http://127.0.0.1:8000 [--max-examples 25]

schemathesis runs its examples, coverage (boundary values: too long, too big, wrong type) and
fuzzing phases against every operation with the `not_a_server_error` check; each failure comes
with the exact request to reproduce it (a curl line), which the report keeps."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx


def engine_unfinished(base_url: str) -> int | None:
    try:
        stats = httpx.get(f"{base_url}/admin/engine", timeout=30).json()
    except (httpx.HTTPError, ValueError):
        return None
    return stats.get("unfinished_requests")


def wait_engine_idle(base_url: str, limit_s: float) -> tuple[int | None, float]:
    """Unfinished engine requests once it settles (or at limit_s), and how long that took."""
    t0 = time.monotonic()
    n = engine_unfinished(base_url)
    while n != 0 and time.monotonic() - t0 < limit_s:
        time.sleep(2)
        n = engine_unfinished(base_url)
    return n, round(time.monotonic() - t0, 1)


def run(base_url: str, out_dir: Path, max_examples: int = 25, timeout_s: int = 900, seed: int = 1) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["schemathesis", "run", f"{base_url}/openapi.json", "--checks", "not_a_server_error",
           "--max-examples", str(max_examples), "--seed", str(seed), "--request-timeout", "120",
           "--workers", "1", "--continue-on-failure", "--report", "junit",
           "--report-junit-path", str(out_dir / "fuzz-junit.xml")]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        output, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output, rc = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or ""), -1
    (out_dir / "fuzz.log").write_text(output)
    unfinished, settle_s = wait_engine_idle(base_url, 120)
    server_errors = re.findall(r"Server error", output)
    return {"command": " ".join(cmd), "exit_code": rc, "seconds": round(time.monotonic() - t0, 1),
            "summary": [ln.strip() for ln in output.splitlines() if re.search(r"\d+ generated|Tested: \d+|⚠️", ln)][-8:],
            "server_errors": len(server_errors),
            "reproduce": [ln.strip() for ln in output.splitlines() if ln.strip().startswith("curl ")][:20],
            "engine_unfinished_after": unfinished, "engine_settle_s": settle_s, "log": str(out_dir / "fuzz.log")}


def targets(f: dict) -> dict[str, str]:
    ok = lambda b: "PASS" if b else "MISS"  # noqa: E731
    return {"fuzz: 0 5xx": ok(f["server_errors"] == 0 and f["exit_code"] in (0,)),
            "engine keeps 0 unfinished requests": ok(f["engine_unfinished_after"] == 0)}


def render(f: dict) -> str:
    lines = [f"Fuzz run ({f['seconds']} s, exit {f['exit_code']}): server errors {f['server_errors']}; engine "
             f"unfinished requests afterwards {f['engine_unfinished_after']} (after {f['engine_settle_s']} s)"]
    lines += ["  " + s for s in f["summary"]]
    lines += ["  reproduce: " + c for c in f["reproduce"]]
    lines += ["", "| fuzz target | verdict |", "|---|---|"] + [f"| {k} | {v} |" for k, v in targets(f).items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--max-examples", type=int, default=25)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    f = run(args.url.rstrip("/"), args.out, args.max_examples)
    print(render(f))
    return 0 if all(v == "PASS" for v in targets(f).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
