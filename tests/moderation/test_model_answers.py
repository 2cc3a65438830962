"""The served model's own answers: train-split file -> benign answer rows; eval-split file -> the
eval's per-answer measure. Checks the split holds and that an answer counts as flagged when any
of the pipeline's windows is."""
from __future__ import annotations

import json

import numpy as np
import pytest

from services.config import StreamingSettings
from services.moderation.categories import CATEGORIES
from services.pipeline.windows import WindowSplitter
from tools.moderation import eval as moderation_eval
from tools.moderation.data import __main__ as build
from tools.moderation.data.common import dedup_key
from tools.moderation.data.model_answers import FILE, FILES, model_answer_rows
from tools.moderation.model_answers import NATURAL_FAMILY, natural_rows, pick, windows_of


@pytest.fixture(scope="module")
def split_rows():
    return build.assign_splits(build.collect(build.Path("/nonexistent"), require=False), build.reserved_keys())


def test_train_file_gives_benign_answer_rows_in_context():
    rows = model_answer_rows()
    assert len(rows) > 1000
    assert {r.split for r in rows} == {"train"} and {r.kind for r in rows} == {"answer"}
    assert all(not r.labels and r.context and r.family == "benign_answer" for r in rows)
    assert {r.lang for r in rows} == {"en", "de", "fr", "es"}


def test_answers_to_eval_requests_never_train(split_rows):
    eval_requests = {dedup_key(r.text) for r in split_rows if r.split == "eval"}
    eval_file = {dedup_key(a["request"]) for a in moderation_eval.read_model_answers()}
    assert len(eval_file) > 200
    train_requests = {dedup_key(r.context) for r in model_answer_rows()}
    assert not train_requests & eval_file
    assert not train_requests & eval_requests  # the file still matches the data's split
    kept = [r for r in split_rows if r.source == "model_answers"]
    assert kept and all(r.split == "train" for r in kept)


def test_hand_written_questions_never_train(split_rows):
    """The eval's hand-written questions are reserved: no data row and no trained model answer is one of them."""
    questions = natural_rows(build.NATURAL)
    assert {q["lang"] for q in questions} == {"en", "de", "fr", "es"} and len(questions) >= 100
    assert all(q["split"] == "eval" and q["family"] == NATURAL_FAMILY for q in questions)
    keys = {dedup_key(q["text"]) for q in questions}
    assert not keys & {dedup_key(r.text) for r in split_rows if r.split == "train"}
    assert not keys & {dedup_key(r.context) for r in model_answer_rows()}
    judged = {dedup_key(a["request"]) for a in moderation_eval.read_model_answers() if a["family"] == NATURAL_FAMILY}
    assert judged == keys  # the eval file answers every one of them


def test_an_answer_to_an_eval_request_in_the_train_file_is_refused(tmp_path):
    line = json.loads(FILE.read_text(encoding="utf-8").split("\n")[0])
    (tmp_path / "a.jsonl").write_text(json.dumps({**line, "split": "eval"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="eval request"):
        model_answer_rows([tmp_path / "a.jsonl"])


def test_windows_are_the_pipelines_cuts():
    answer = "Sure! Here is a plan for your trip. " * 12 + "Have fun"
    splitter = WindowSplitter(StreamingSettings())
    splitter.add(answer)
    assert windows_of(answer) == [w.text for w in splitter.all_windows()]
    assert len(windows_of(answer)) > 3


def test_pick_takes_benign_requests_of_one_split_per_family_and_language():
    rows = [{"text": f"t{i}", "split": "train" if i % 2 else "eval", "family": "everyday_benign", "kind": "request",
             "labels": [], "lang": "en"} for i in range(20)]
    rows.append({"text": "bad", "split": "train", "family": "harmful_request", "kind": "request", "labels": ["illicit"], "lang": "en"})
    got = pick(rows, "train", 3)
    assert len(got) == 3 and all(r["split"] == "train" and r["family"] == "everyday_benign" for r in got)
    assert got == pick(list(reversed(rows)), "train", 3)  # by hash, not by order


class FlagsWindowsWithBad:
    """Stands in for eval.Scorer: a window is flagged (harassment) iff it says BAD."""

    def answers(self, pairs):
        hits = np.zeros((len(pairs), len(CATEGORIES)), dtype=bool)
        hits[:, 0] = ["BAD" in w for _, w in pairs]
        return hits, hits[:, 0].astype(float)


def test_an_answer_is_flagged_when_any_window_is():
    clean = "A calm and friendly sentence about cooking rice. " * 10
    answers = [{"request": "r1", "answer": clean, "family": "everyday_benign", "lang": "en"},
               {"request": "r2", "answer": clean + "Then BAD words near the end.", "family": "everyday_benign", "lang": "en"},
               {"request": "r3", "answer": "BAD " + clean, "family": "smalltalk", "lang": "de"}]
    measures, by = moderation_eval.model_answer_measures(FlagsWindowsWithBad(), answers)
    per_answer = measures[0]
    assert per_answer.n == 3 and per_answer.value == pytest.approx(2 / 3) and per_answer.verdict == "MISS"
    assert by["model_answer|T 1 top_p 1|everyday_benign|en"] == {"n": 2, "flagged": 0.5}
    assert measures[1].n > 3 and 0 < measures[1].value < 2 / 3  # most windows are clean


def test_each_sampling_is_its_own_row():
    clean = "A calm and friendly sentence about cooking rice. " * 4
    served = {"temperature": 0.2, "top_p": 0.9}
    answers = [{"request": "r1", "answer": clean, "family": "everyday_benign", "lang": "en"},
               {"request": "r1", "answer": "BAD " + clean, "family": "everyday_benign", "lang": "en", "sampling": served}]
    measures, by = moderation_eval.model_answer_measures(FlagsWindowsWithBad(), answers)
    per_answer = {m.name: m for m in measures if m.target is not None}
    assert per_answer["model answers to benign requests flagged, T 1 top_p 1"].value == 0
    assert per_answer["model answers to benign requests flagged, T 0.2 top_p 0.9"].value == 1
    assert set(by) == {"model_answer|T 1 top_p 1|everyday_benign|en", "model_answer|T 0.2 top_p 0.9|everyday_benign|en"}


def test_the_committed_samplings_answer_the_same_requests():
    """Train files: one per sampling, the second at what users get by default (change the defaults:
    regenerate it) for a part of the first's requests; eval files: the same requests (their rows compare)."""
    from services.config import GeneratorSettings

    first, served = (moderation_eval.read_model_answers((f,)) for f in FILES)  # any JSONL of answers
    assert len(FILES) == 2 and len(served) > 1000 and {a["request"] for a in served} <= {a["request"] for a in first}
    gen = GeneratorSettings()
    assert {(a["sampling"]["temperature"], a["sampling"]["top_p"]) for a in served} == {(gen.default_temperature, gen.default_top_p)}
    by_sampling: dict = {}
    for a in moderation_eval.read_model_answers():
        by_sampling.setdefault(moderation_eval.sampling_label(a["sampling"]), []).append(a["request"])
    assert set(by_sampling) == {"T 1 top_p 1", "T 0.2 top_p 0.9"}
    assert sorted(by_sampling["T 1 top_p 1"]) == sorted(by_sampling["T 0.2 top_p 0.9"])


def test_the_output_probe_counts_only_blocks_of_questions_that_passed_input():
    from tools.moderation.output_probe import output_blocks

    answers = [("wine stain", 1, "content_filter"), ("wine stain", 2, "stop"), ("bomb", 1, "content_filter"),
               ("haiku", 1, "length")]
    assert output_blocks(answers, {"wine stain": False, "bomb": True, "haiku": False}) == [("wine stain", 1)]
