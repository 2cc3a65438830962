"""tools.moderation.data.documents: professional documents from a fake wheel laid out like
inspect-evals', cut into benign window-sized chunks, one split group per document."""
from __future__ import annotations

import gzip
import json
import zipfile

from tools.moderation.data.common import Wheel
from tools.moderation.data.documents import CHUNK_CHARS, SWE_LANCER, TAU2, chunks, document_rows


def test_paragraphs_are_joined_up_to_the_chunk_size():
    paras = [f"Paragraph {i} " + "word " * 30 for i in range(6)]
    out = chunks("\n\n".join(paras))
    assert all(len(c) <= CHUNK_CHARS for c in out) and len(out) < len(paras)
    assert "".join(c.replace("\n", "") for c in out) == "".join(p.strip() for p in paras)  # in order, nothing lost
    assert chunks("one very long paragraph " * 40) == [("one very long paragraph " * 40).strip()]  # never cut inside


def test_documents_become_benign_rows_grouped_by_document(tmp_path):
    bank = [{"id": "doc_1", "title": "Internal: Closing accounts for cause", "content": "## Steps\n\n1. Verify the customer.\n\n2. Check fraud flags."}]
    swe = 'question_id,description\n16912_4,"## Action Performed:\\n1. Go to Settings\\n\\n## Expected Result:\\nIt stays open"\n'
    path = tmp_path / "inspect_evals-0.28.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(TAU2 + "banking_knowledge/documents.json.gz", gzip.compress(json.dumps(bank).encode()))
        zf.writestr(TAU2 + "telecom/tech_support_manual.txt", "# Introduction\n\nLong press the power button to restart the phone.")
        zf.writestr(TAU2 + "banking_knowledge/prompts/system.md", "You are a bank agent who follows the policy.")
        zf.writestr(SWE_LANCER, swe)
    rows = document_rows(Wheel(path))
    assert all(r.labels == [] and r.kind == "statement" and r.family == "benign_text" for r in rows)
    assert {r.group for r in rows} == {"bank:doc_1", "telecom/tech_support_manual.txt", "swe_lancer:16912"}
    assert not any("bank agent" in r.text for r in rows)  # agent prompts are not documents
    swe_text = " ".join(r.text for r in rows if r.source == "swe_lancer")
    assert "\\n" not in swe_text and "Go to Settings" in swe_text
