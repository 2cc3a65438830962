"""How long a client that leaves mid-stream keeps the engine busy: from the client closing its
connection to the Generator counting the aborted engine request (GET /admin/engine).

    python -m tools.bench.disconnect [--tries 3] [--keepalive 15,1] [--modes buffered,async]

Starts chatgate (tools/launch.py) once per keep-alive interval (streaming.keepalive_s). Each try
streams a long answer, reads a few events, closes the connection and polls the engine stats every
50 ms. Prints per mode and interval the seconds until the abort: the engine slot a gone client
holds, which every other request on a busy CPU host waits behind.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tools.launch import start_live_app  # noqa: E402

PROMPT = "Write a very long story about a dragon who learns to bake bread."


def leave_mid_stream(base_url: str, mode: str, events: int = 4) -> float:
    """Seconds from closing the connection to the engine's abort (inf: not within 30 s)."""
    stats = lambda: httpx.get(f"{base_url}/admin/engine", timeout=10).json()  # noqa: E731
    before = stats()["requests_aborted"]
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 400, "stream": True,
            "temperature": 0, "moderation_mode": mode}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=120) as resp:
        resp.raise_for_status()
        seen = 0
        for line in resp.iter_lines():
            seen += line.startswith("data: ")
            if seen >= events:
                break
    left = time.monotonic()
    while time.monotonic() - left < 30:
        if stats()["requests_aborted"] > before:
            return time.monotonic() - left
        time.sleep(0.05)
    return float("inf")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--keepalive", default="15,1", help="streaming.keepalive_s values, one start each")
    ap.add_argument("--modes", default="buffered,async")
    args = ap.parse_args(argv)
    rows = []
    for keepalive in [float(k) for k in args.keepalive.split(",")]:
        app = start_live_app(user_config={"Router": {"streaming": {"keepalive_s": keepalive, "allow_client_async": True}}})
        try:
            for mode in args.modes.split(","):
                waits = [leave_mid_stream(app.base_url, mode) for _ in range(args.tries)]
                rows.append((keepalive, mode, waits))
                print(f"keepalive {keepalive:g} s, {mode}: " + ", ".join(f"{w:.2f}" for w in waits) + " s", flush=True)
        finally:
            app.stop()
    print("\n| keep-alive (s) | mode | client gone -> engine abort, median (s) | max (s) |\n|---:|---|---:|---:|")
    for keepalive, mode, waits in rows:
        print(f"| {keepalive:g} | {mode} | {statistics.median(waits):.2f} | {max(waits):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
