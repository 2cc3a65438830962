"""Recorder, store and export against a real PostgreSQL (private schema)."""
from __future__ import annotations

import asyncio
import json
import time

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from services.audit.events import AuditEvent, redacted
from services.audit.store import AuditStore
from services.cli import main as chatgate
from services.config import Settings
from services.feedback.metrics import FeedbackMetrics
from services.feedback.recorder import CompletionRecorder
from services.feedback.records import ChoiceRecord, CompletionRecord, FeedbackRequest
from services.feedback.service import FeedbackService
from services.feedback.store import FeedbackStore
from tests.feedback.support import feedback_pg  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
QUESTION = [{"role": "user", "content": "Explain how a classification algorithm works"}]


def settings(dsn: str, store_text: bool = True) -> Settings:
    return Settings.model_validate({"audit": {"enabled": False, "dsn": dsn, "store_text": store_text},
                                    "feedback": {"lookup_wait_s": 0.2}})


def metrics() -> FeedbackMetrics:
    return FeedbackMetrics("prometheus", registry=CollectorRegistry())


def record(cid: str, *texts: str, outcomes: tuple[str, ...] = (), messages=QUESTION, key: str | None = None):
    outcomes = outcomes or ("answered",) * len(texts)
    return CompletionRecord(completion_id=cid, api_key_id=key, model="m", created=time.time(), messages=messages,
                            choices=[ChoiceRecord(index=i, outcome=o, text=t,
                                                  categories=[] if o == "answered" else ["violence"])
                                     for i, (t, o) in enumerate(zip(texts, outcomes))])


def recorded(s: Settings, *records: CompletionRecord) -> CompletionRecorder:
    rec = CompletionRecorder(s, metrics=metrics())
    for r in records:
        asyncio.run(rec.record(r))
    assert rec.flush(10)
    return rec


def test_records_are_written_at_once_and_joined_to_the_audit_trail(feedback_pg):
    s = settings(feedback_pg, store_text=False)
    rec = recorded(s, record("chatcmpl-j1", "Fine answer.", "[template violence]", outcomes=("answered", "output_blocked")))
    got = rec.store.completions(["chatcmpl-j1", "chatcmpl-nope"])
    assert list(got) == ["chatcmpl-j1"]
    c = got["chatcmpl-j1"]
    assert c["messages"] is None and c["choices"][0]["text"] is None and c["choices"][0]["text_chars"] == 12
    assert [c["choices"][i]["outcome"] for i in (0, 1)] == ["answered", "output_blocked"]
    assert rec.metrics._c["chatgate_feedback_records_total"].labels(result="written")._value.get() == 1
    rec.close()
    audit = AuditStore(feedback_pg)  # same schema: the moderation decision behind the blocked choice
    audit.insert(redacted(AuditEvent(request_id="chatcmpl-j1", stage="output", flagged=True, categories=["violence"],
                                     text="x"), store_text=False).model_dump())
    audit.close()
    with psycopg.connect(feedback_pg) as conn:
        rows = conn.execute("SELECT ch.choice_index, ch.outcome, a.stage, a.categories FROM chatgate_completion_choices ch "
                            "JOIN chatgate_audit a ON a.request_id = ch.completion_id "
                            "WHERE ch.completion_id = 'chatcmpl-j1' AND ch.outcome <> 'answered'").fetchall()
    assert rows == [(1, "output_blocked", "output", ["violence"])]


def test_record_never_raises_nor_waits_when_postgres_is_down():
    s = Settings.model_validate({"feedback": {"dsn": "postgresql://postgres@127.0.0.1:1/none"}})
    rec = CompletionRecorder(s, metrics=metrics(), retries=1)
    t0 = time.perf_counter()
    asyncio.run(rec.record(record("chatcmpl-down", "x")))
    assert time.perf_counter() - t0 < 0.05  # enqueued only; the network is the writer thread's problem
    assert rec.flush(10)
    assert rec.metrics._c["chatgate_feedback_records_total"].labels(result="dropped_error")._value.get() == 1
    rec.close()


def test_feedback_on_the_same_subject_replaces_the_earlier_one(feedback_pg):
    s = settings(feedback_pg)
    rec = recorded(s, record("chatcmpl-r1", "a", "b"))
    svc = FeedbackService(s, FeedbackStore(feedback_pg), metrics())
    first = svc.submit(FeedbackRequest(completion_id="chatcmpl-r1", rating="up"), None)
    again = svc.submit(FeedbackRequest(completion_id="chatcmpl-r1", rating="down", reason="wrong"), None)
    assert (first["replaced"], again["replaced"], again["id"]) == (False, True, first["id"])
    rows = svc.store.feedback(completion_id="chatcmpl-r1")
    assert [(r["verdict"], r["reason"]) for r in rows] == [("negative", "wrong")]
    svc.submit(FeedbackRequest(completion_id="chatcmpl-r1", preferred_index=1), None)
    svc.submit(FeedbackRequest(completion_id="chatcmpl-r1", ranking=[0, 1]), None)  # same two answers: replaces
    prefs = svc.store.feedback(kind="preference")
    assert [r["ranking"] for r in prefs] == [[["chatcmpl-r1", 0], ["chatcmpl-r1", 1]]]
    rec.close()


def test_export_writes_sft_and_preference_pairs(feedback_pg, tmp_path, capsys):
    s = settings(feedback_pg)
    other_q = [{"role": "user", "content": "Say hello"}]
    rec = recorded(s,
                   record("chatcmpl-e1", "Good answer.", "Weak answer."),
                   record("chatcmpl-e2", "Good answer."),  # same prompt and answer as e1/0: one SFT row
                   record("chatcmpl-e3", "[template]", outcomes=("input_blocked",), messages=other_q),
                   record("chatcmpl-e4", "Hello!", "[template]", outcomes=("answered", "output_blocked"), messages=other_q),
                   record("chatcmpl-e5", "Another answer."))
    svc = FeedbackService(s, FeedbackStore(feedback_pg), metrics())
    for body in ({"completion_id": "chatcmpl-e1", "rating": "up"},
                 {"completion_id": "chatcmpl-e1", "choice_index": 1, "rating": "down"},  # up vs down: a pair
                 {"completion_id": "chatcmpl-e2", "score": 5},
                 {"completion_id": "chatcmpl-e3", "rating": "up"},  # a refusal liked: never training data
                 {"completion_id": "chatcmpl-e4", "preferred_index": 0},  # beats a template: excluded
                 {"ranking": [{"completion_id": "chatcmpl-e5"}, {"completion_id": "chatcmpl-e1", "index": 1}]}):
        svc.submit(FeedbackRequest.model_validate(body), None)
    assert chatgate(["data", "export", "--out", str(tmp_path), "--dsn", feedback_pg]) == 0
    sft = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    prefs = [json.loads(line) for line in (tmp_path / "preferences.jsonl").read_text().splitlines()]
    assert sft == [{"messages": QUESTION + [{"role": "assistant", "content": "Good answer."}]}]
    assert sorted((p["chosen"], p["rejected"]) for p in prefs) == [("Another answer.", "Weak answer."),
                                                                   ("Good answer.", "Weak answer.")]
    assert all(p["prompt"] == QUESTION for p in prefs)
    out = capsys.readouterr().out
    assert "1 SFT conversations" in out and "2 preference pairs" in out and "2 blocked" in out
    rec.close()


def test_export_says_clearly_when_texts_were_not_stored(feedback_pg, tmp_path, capsys):
    s = settings(feedback_pg, store_text=False)
    rec = recorded(s, record("chatcmpl-h1", "hashed answer"))
    FeedbackService(s, FeedbackStore(feedback_pg), metrics()).submit(
        FeedbackRequest(completion_id="chatcmpl-h1", rating="up"), None)
    assert chatgate(["data", "export", "--out", str(tmp_path), "--dsn", feedback_pg]) == 1
    assert "CHATGATE_AUDIT__STORE_TEXT=true" in capsys.readouterr().err
    assert (tmp_path / "sft.jsonl").read_text() == "" and (tmp_path / "preferences.jsonl").read_text() == ""
    rec.close()
