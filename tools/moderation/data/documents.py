"""Benign professional documents, cut into window-sized chunks: procedures, policies, manuals and bug
reports from inspect-evals 0.28.0 (MIT; upstream terms of tau2-bench and SWE-Lancer apply).

Why: a long writing request is scored window by window, and the windows of pasted professional
text ("Long press the crown to activate Siri", a statute on investigating illegal acts, a bank's
procedure for accounts closed for cause) read as `illicit` to heads that had seen little of that
register: 13 % of WritingBench's requests were flagged (model card, experiment 33). WritingBench
itself stays out of training (it is the external eval); these are other documents in the same wheel:
- tau2's bank knowledge base (`banking_knowledge/documents.json.gz`, 698 internal articles) and its
  airline, retail and telecom policies and support manuals;
- SWE-Lancer's task descriptions (Expensify bug reports and feature requests).
Group = the document, so a document's chunks stay on one side of the split.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re

from tools.moderation.data.common import Row, Wheel

CHUNK_CHARS = 400  # paragraphs are joined up to this; a window is <= 200, so a chunk is 1-3 windows
TAU2 = "inspect_evals/tau2/data/domains/"
SWE_LANCER = "inspect_evals/swe_lancer/data/all_swelancer_tasks.csv"
LICENCE = ("inspect-evals 0.28.0 (MIT): tau2-bench domain documents and SWE-Lancer task descriptions; "
           "upstream terms apply")


def chunks(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Paragraphs (blank-line separated) joined in order while the chunk stays within `limit`."""
    out: list[str] = []
    for para in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not para:
            continue
        if out and len(out[-1]) + len(para) + 1 <= limit:
            out[-1] = f"{out[-1]}\n{para}"
        else:
            out.append(para)
    return out


def _rows(text: str, source: str, group: str) -> list[Row]:
    return [Row(c, [], "statement", "benign_text", "en", source, group) for c in chunks(text) if len(c.split()) >= 3]


def document_rows(wheel: Wheel) -> list[Row]:
    rows: list[Row] = []
    for doc in json.loads(gzip.decompress(wheel.read(TAU2 + "banking_knowledge/documents.json.gz"))):
        rows += _rows(f"{doc['title']}\n\n{doc['content']}", "tau2_documents", f"bank:{doc['id']}")
    for name in wheel.names(TAU2):
        if name.endswith((".txt", ".md")) and "/prompts/" not in name:
            rows += _rows(wheel.text(name), "tau2_documents", name.removeprefix(TAU2))
    csv.field_size_limit(1 << 30)
    for task in csv.DictReader(io.StringIO(wheel.text(SWE_LANCER))):
        # the descriptions hold escaped line breaks ("\\n") from the GitHub issue bodies
        text = task["description"].replace("\\r", "").replace("\\n", "\n")
        rows += _rows(text, "swe_lancer", f"swe_lancer:{task['question_id'].split('_')[0]}")
    return rows
