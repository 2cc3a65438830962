"""What the Router's two checks cost per request, counted in encoder runs: the unit of their CPU.

    python -m tools.bench.check_cost [--requests 150] [--answer-chars 135] [--model-dir DIR]

Replays held-out (request, answer) pairs of the served model (the pool of
loadtest/prompts_distinct.txt, answers cut to `--answer-chars`; 135 characters is about the 32 tokens
of the benchmark's answers) through the real scanner: the input check of the request, then every
answer window the Router would cut (services/pipeline/windows.py, the shipped streaming settings),
each in its own call, as a stream sends them. Prints, per request, the encoder's lower and upper
halves that ran (a whole run is one of each; the cascade skips the upper half for texts its gate
lets go), the tokens and the time, for one scanner process serving both checks (`moderation.router_scanners: shared`,
one embedding cache) and for one process per direction (two caches: the output check embeds the
request again), with the last window's check alone (what a non-streamed answer waits for after the
engine's last token).

Why runs and not tokens: one encoder run reads all ~21 MB of int8 weights, so a 6-token text costs
~5 ms and each further token ~0.15-0.2 ms on these CPUs (docs/benchmark.md, experiment H).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from loadtest.common import load_prompts
from tools.bench.prompts import OUT as DISTINCT, source_rows


@dataclass
class Meter:
    """Wraps the scanner's encoder: counts what actually ran (cache misses), in halves of the
    encoder: a whole run is a lower half (layers 1-6) and an upper half (7-12); the cascade runs
    the upper half only for texts its gate holds (services/moderation/semantic.py)."""

    encoder: object
    lows: int = 0
    highs: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def __getattr__(self, name):  # dim, mid_dim, tokenizer
        return getattr(self.encoder, name)

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.seconds += time.perf_counter() - t0
        return out

    def _count(self, texts) -> None:
        self.lows += len(texts)  # one session run per text (services/moderation/encoder.py)
        self.tokens += sum(len(e.ids) for e in self.encoder.tokenizer.encode_batch(list(texts)))

    def embed(self, texts):
        self._count(texts)
        self.highs += len(texts)
        return self._timed(self.encoder.embed, texts)

    def low(self, texts):
        self._count(texts)
        return self._timed(self.encoder.low, texts)

    def high(self, hidden, mid):
        self.highs += 1
        return self._timed(self.encoder.high, hidden, mid)


def pairs(n: int, answer_chars: int) -> list[tuple[str, str]]:
    """The first n distinct benchmark prompts with the served model's answer to each."""
    pool = set(load_prompts(DISTINCT))
    out: dict[str, str] = {}
    for row in source_rows():
        if row["request"] in pool and row["request"] not in out and row["answer"].strip():
            out[row["request"]] = row["answer"][:answer_chars]
    return list(out.items())[:n]


def measure(settings, rows: list[tuple[str, str]], shared: bool) -> dict[str, float]:
    from services.config import StreamingSettings
    from services.moderation.scan import load_scanner
    from services.pipeline.windows import WindowSplitter

    def scanner():
        s = load_scanner(settings)
        s.semantic.encoder = Meter(s.semantic.encoder)
        return s

    inp = scanner()
    out = inp if shared else scanner()
    last_window_s = 0.0
    for request, answer in rows:
        inp.scan_inputs([[request]])
        splitter = WindowSplitter(StreamingSettings())
        splitter.add(answer)
        for window in splitter.all_windows():
            before = out.semantic.encoder.seconds
            out.scan_answers([(request, window.text)])
        last_window_s += out.semantic.encoder.seconds - before
    meters = [inp.semantic.encoder] + ([] if shared else [out.semantic.encoder])
    n = len(rows)
    return {"lows": sum(m.lows for m in meters) / n, "highs": sum(m.highs for m in meters) / n,
            "tokens": sum(m.tokens for m in meters) / n,
            "ms": 1e3 * sum(m.seconds for m in meters) / n, "last_window_ms": 1e3 * last_window_s / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=150)
    ap.add_argument("--answer-chars", type=int, default=135)
    ap.add_argument("--model-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    from services.config import ModerationSettings

    settings = ModerationSettings(**({"model_dir": args.model_dir} if args.model_dir else {}))
    rows = pairs(args.requests, args.answer_chars)
    print(f"{len(rows)} requests, answers cut to {args.answer_chars} characters; per request:")
    print(f"{'scanner processes':<34}{'lower halves':>13}{'upper halves':>13}{'tokens':>8}{'ms':>8}{'last window ms':>16}")
    for label, shared in (("shared (one cache)", True), ("per_direction (two caches)", False)):
        m = measure(settings, rows, shared)
        print(f"{label:<34}{m['lows']:>13.2f}{m['highs']:>13.2f}{m['tokens']:>8.1f}{m['ms']:>8.1f}{m['last_window_ms']:>16.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
