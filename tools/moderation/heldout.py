"""Eval rows that neither of two builds trained on, for comparing a build with its predecessor.

    python -m tools.moderation.heldout OLD_DATA NEW_DATA OUT_DIR

OLD_DATA / NEW_DATA: folders written by `python -m tools.moderation.data` at the two commits.
Writes OUT_DIR/eval.jsonl: NEW_DATA's eval rows less those whose content (`semantic_train.
content_key`) or text the old split trained on. Why: when the split itself changes (session 12
switched `eval_part` to a hash threshold, which moved 169 contents once), the old build has seen
some of the new eval contents and would look better on them than it is. Pass OUT_DIR as `--data`
to `tools.moderation.eval` and `tools.moderation.curve` for both builds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tools.moderation.semantic_build import read_rows as read
from tools.moderation.semantic_train import content_key


def unseen_by(old_train: list[dict], new_eval: list[dict]) -> list[dict]:
    contents = {content_key(r["group"]) for r in old_train}
    texts = {r["text"] for r in old_train}
    return [r for r in new_eval if content_key(r["group"]) not in contents and r["text"] not in texts]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    new_eval = read(args.new / "eval.jsonl")
    keep = unseen_by(read(args.old / "train.jsonl"), new_eval)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep), encoding="utf-8")
    print(f"[heldout] {len(keep)} of {len(new_eval)} eval rows unseen by the old split -> {args.out / 'eval.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
