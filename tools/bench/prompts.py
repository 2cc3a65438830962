"""Prompts for the benchmark that users could have sent: every request a text chatgate has not seen.

    python -m tools.bench.prompts [--out loadtest/prompts_distinct.txt] [--model-dir DIR]

Why: the Router's scanner processes keep an LRU cache of embeddings (`moderation.embedding_cache_size`),
so a benchmark that repeats 17 prompts (and, at temperature 0, gets the same answers back) measures
both checks as cache hits after its warm-up: the encoder never runs. Real users' messages are new.
This writes a pool of distinct benign requests (the held-out requests of the moderation eval's
model-answer rows: everyday, tricky, small talk, QA and hand-written questions in en/de/fr/es; no
build trains on them), keeping only those the shipped input check passes, so every benchmark request
takes the answered path; `slices` hands each (mode, level) its own prompts, the same for both systems.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tools" / "moderation" / "eval_data" / "model_answers.jsonl"
OUT = ROOT / "loadtest" / "prompts_distinct.txt"
MAX_CHARS = 300  # prompts of a chat turn's size; the file is one prompt per line


def source_rows() -> list[dict]:
    """The eval's held-out (request, served model's answer) rows, each request on one line."""
    rows = [json.loads(line) for line in SOURCE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{**r, "request": " ".join(r["request"].split())} for r in rows]


def candidates() -> list[str]:
    """The eval's held-out requests, one line each, in a fixed order that mixes languages and families."""
    texts = {r["request"] for r in source_rows()}
    texts = [t for t in texts if t and len(t) <= MAX_CHARS and not t.startswith("#")]
    return sorted(texts, key=lambda t: hashlib.sha256(t.encode()).hexdigest())


def _sizes(modes: list[str], levels: list[int], requests: int) -> list[tuple[tuple[str, str], int]]:
    """(mode, "warmup" | level) -> how many requests, in the order the slices are cut."""
    return [((mode, key), n) for mode in modes
            for key, n in [("warmup", max(levels)), *((str(level), max(requests, level)) for level in levels)]]


def slices(prompts: list[str], modes: list[str], levels: list[int], requests: int) -> dict[tuple[str, str], list[str]]:
    """(mode, "warmup" | level) -> its prompts: consecutive, disjoint slices of `prompts` in a fixed
    order of every mode named (not only the ones a system runs), so bare vLLM and chatgate get the
    same prompts for the same (mode, level). Wraps around (and repeats) only when the pool is short."""
    out: dict[tuple[str, str], list[str]] = {}
    pos = 0
    for key, n in _sizes(modes, levels, requests):
        out[key] = [prompts[(pos + i) % len(prompts)] for i in range(n)]
        pos += n
    return out


def needed(modes: list[str], levels: list[int], requests: int) -> int:
    """Prompts a run needs for none to repeat."""
    return sum(n for _, n in _sizes(modes, levels, requests))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--model-dir", type=Path, default=None, help="the moderation build to screen with (default: settings)")
    args = ap.parse_args(argv)
    from services.config import ModerationSettings
    from services.moderation import load_policy
    from services.moderation.scan import load_scanner

    settings = ModerationSettings(**({"model_dir": args.model_dir} if args.model_dir else {}))
    scanner = load_scanner(settings)
    policy = load_policy(settings)
    texts = candidates()
    kept = [t for t, scores in zip(texts, scanner.scan_inputs([[t] for t in texts])) if not policy.judge(scores).flagged]
    key = json.loads((Path(settings.model_dir) / "manifest.json").read_text())["key"]
    header = (f"# {len(kept)} distinct benign requests for tools.bench (python -m tools.bench.prompts): the held-out\n"
              f"# requests of {SOURCE.relative_to(ROOT)} that moderation build {key} passes at input\n"
              f"# ({len(texts) - len(kept)} of {len(texts)} dropped). One prompt per line.\n")
    args.out.write_text(header + "\n".join(kept) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(kept)} prompts ({len(texts) - len(kept)} flagged at input and dropped), build {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
