"""Feedback request validation, verdicts and redaction (no database)."""
import pytest
from pydantic import ValidationError

from services.audit.events import text_digest
from services.feedback.records import ChoiceRecord, CompletionRecord, FeedbackRequest
from services.feedback.recorder import prompt_key, redact

CID = "chatcmpl-abc123"


@pytest.mark.parametrize("body", [
    {"completion_id": CID},  # no judgement at all
    {"completion_id": CID, "rating": "up", "score": 5},  # two kinds at once
    {"completion_id": CID, "rating": "meh"},
    {"completion_id": CID, "score": 0},
    {"completion_id": CID, "score": 6},
    {"completion_id": CID, "rating": "up", "choice_index": -1},
    {"completion_id": CID, "rating": "up", "choice_index": 8},
    {"completion_id": "not-a-completion", "rating": "up"},
    {"completion_id": "chatcmpl-" + "x" * 97, "rating": "up"},
    {"completion_id": CID, "rating": "up", "reason": "x" * 10_001},
    {"completion_id": CID, "rating": "up", "colour": "red"},  # unknown fields are refused, not ignored
    {"completion_id": CID, "ranking": [0]},
    {"completion_id": CID, "ranking": [0, 0]},
    {"completion_id": CID, "ranking": [0, 1, 2, 3, 4, 5, 6, 7, 0]},
    {"ranking": [0, 1]},  # bare indices need a completion_id
    {"ranking": [{"completion_id": CID, "index": 0}, {"completion_id": CID, "index": 0}]},
])
def test_bad_feedback_is_refused(body):
    with pytest.raises(ValidationError):
        FeedbackRequest.model_validate(body)


@pytest.mark.parametrize("body,verdict", [
    ({"rating": "up"}, "positive"), ({"rating": "down"}, "negative"),
    ({"score": 5}, "positive"), ({"score": 4}, "positive"), ({"score": 3}, "neutral"),
    ({"score": 2}, "negative"), ({"score": 1}, "negative"),
])
def test_ratings_have_a_verdict(body, verdict):
    req = FeedbackRequest.model_validate({"completion_id": CID, **body})
    assert (req.kind, req.verdict()) == ("rating", verdict)


def test_preferences_rank_answers_best_first():
    req = FeedbackRequest.model_validate({"completion_id": CID, "preferred_index": 1})
    assert (req.kind, req.verdict(), req.ranked()) == ("preference", None, [(CID, 1)])
    other = "chatcmpl-other"
    req = FeedbackRequest.model_validate({"completion_id": CID, "ranking": [2, {"completion_id": other, "index": 0}, 0]})
    assert req.ranked() == [(CID, 2), (other, 0), (CID, 0)]
    req = FeedbackRequest.model_validate({"ranking": [{"completion_id": other}, {"completion_id": CID, "index": 1}]})
    assert req.ranked() == [(other, 0), (CID, 1)]


def _record() -> CompletionRecord:
    return CompletionRecord(
        completion_id=CID, api_key_id="key-1", model="m", created=1.0,
        messages=[{"role": "user", "content": "Explain classification"}],
        choices=[ChoiceRecord(index=0, outcome="answered", text="A classifier maps inputs to labels."),
                 ChoiceRecord(index=1, outcome="output_blocked", categories=["violence"], text="[template]",
                              template_category="violence")])


def test_redaction_keeps_texts_only_when_the_operator_opted_in():
    hashed = redact(_record(), store_text=False, hash_key="k")
    assert hashed["messages"] is None and all(c["text"] is None for c in hashed["choices"])
    assert hashed["choices"][0]["text_sha256"] == text_digest("A classifier maps inputs to labels.", "k")
    assert hashed["choices"][0]["text_sha256"].startswith("hmac-sha256:")
    assert hashed["prompt_sha256"] == text_digest(prompt_key(_record().messages), "k")
    assert hashed["choices"][1]["outcome"] == "output_blocked" and hashed["choices"][1]["categories"] == ["violence"]
    kept = redact(_record(), store_text=True)
    assert kept["messages"] == _record().messages and kept["choices"][0]["text"].startswith("A classifier")
    assert kept["choices"][0]["text_sha256"].startswith("sha256:")


def test_prompt_digest_separates_roles():
    a = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "there"}]
    b = [{"role": "user", "content": "hi\nassistant"}, {"role": "assistant", "content": "there"}]
    assert prompt_key(a) != prompt_key(b)
