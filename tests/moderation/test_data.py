"""tools.moderation.data: determinism, the split (no group, template, content or text on both sides),
labels and the form balance that issue 11 asks for. Uses the generated part (no wheels needed)."""
from __future__ import annotations

import json
import zipfile
from collections import Counter

import pytest

from services.moderation.categories import CATEGORIES as RUNTIME_CATEGORIES
from services.moderation.normalize import normalize
from tools.moderation.data import __main__ as build
from tools.moderation.data.common import CATEGORIES, STABLE_MIN, Wheel, dedup_key, eval_part, fill, fix_grammar
from tools.moderation.data.gen_requests import typo


@pytest.fixture(scope="module")
def rows():
    return build.assign_splits(build.collect(build.Path("/nonexistent"), require=False), build.reserved_keys())


def test_categories_match_the_runtime():
    assert CATEGORIES == RUNTIME_CATEGORIES


def test_output_is_byte_identical_across_runs(tmp_path):
    for out in ("a", "b"):
        build.main(["--out", str(tmp_path / out), "--wheels", str(tmp_path / "none"), "--allow-missing"])
    for name in ("train.jsonl", "eval.jsonl", "external.jsonl", "sources.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for name in ("train.jsonl", "eval.jsonl"):  # one record a line, even for str.splitlines()
        text = (tmp_path / "a" / name).read_text(encoding="utf-8")
        assert [json.loads(x) for x in text.splitlines()] == [json.loads(x) for x in text.split("\n") if x]
    assert json.loads(build.jsonl_line({"t": "a\u2028b\x85c"}).strip()) == {"t": "a\u2028b\x85c"}
    assert len(build.jsonl_line({"t": "a\u2028b\u2029c\x85"}).splitlines()) == 1
    rec = json.loads((tmp_path / "a" / "eval.jsonl").read_text().splitlines()[0])
    assert set(rec) == {"text", "context", "labels", "kind", "family", "lang", "source", "group", "split"}


def test_adding_contents_never_moves_an_old_one_across_the_split():
    old = [f"task{i}" for i in range(400)]
    new = old + [f"new{i}" for i in range(600)]
    before, after = eval_part(old, salt="s"), eval_part(new, salt="s")
    assert before == after & set(old)
    assert 0.28 < len(after) / len(new) < 0.42  # the 0.35 share, within sampling
    few = [f"frame{i}" for i in range(STABLE_MIN - 1)]  # short lists: exact share, both sides used
    assert len(eval_part(few, salt="s")) == round(len(few) * 0.35)


def test_no_group_and_no_text_in_both_splits(rows):
    groups = {s: {r.group for r in rows if r.split == s} for s in ("train", "eval")}
    assert not groups["train"] & groups["eval"]
    keys = {s: {dedup_key(normalize(r.text)) for r in rows if r.split == s} for s in ("train", "eval")}
    assert not keys["train"] & keys["eval"]


def test_generated_frames_and_contents_are_held_out_separately(rows):
    by = {}
    for r in rows:
        if "frame" in r.meta:
            by.setdefault((r.source, "frame", r.meta["frame"]), set()).add(r.split)
        if "item" in r.meta:
            by.setdefault((r.source, "item", r.meta["item"]), set()).add(r.split)
    assert by and all(len(splits) == 1 for splits in by.values())
    assert {k[0] for k in by} >= {"gen_howto", "gen_write", "gen_hate", "gen_intent", "gen_you", "gen_answer"}


def test_handwritten_eval_texts_never_in_train(rows):
    reserved = build.reserved_keys()
    assert len(reserved) > 100
    assert not {dedup_key(r.text) for r in rows if r.split == "train"} & reserved


def test_rows_are_well_formed(rows):
    for r in rows:
        assert set(r.labels) <= set(CATEGORIES) and r.text
        assert all(lab.split("/")[0] in r.labels for lab in r.labels)  # parents implied
        assert r.kind != "answer" or r.context, r
    assert {r.lang for r in rows} == {"en", "de", "fr", "es"}


def test_every_language_has_benign_and_harmful_rows_in_both_splits(rows):
    seen = Counter((r.lang, r.split, bool(r.labels)) for r in rows)
    for lang in ("en", "de", "fr", "es"):
        for split in ("train", "eval"):
            assert seen[(lang, split, True)] >= 50 and seen[(lang, split, False)] >= 50, (lang, split)


def test_form_is_balanced_between_benign_and_harmful_requests(rows):
    """Imperatives and questions on both sides: the confound of issue 11 must not be learnable."""
    def shares(family):
        texts = [r.text for r in rows if r.family == family and r.lang == "en" and r.source.startswith("gen_")]
        q = sum(t.rstrip().endswith("?") for t in texts) / len(texts)
        imp = sum(t.split()[0].lower() in {"write", "tell", "give", "explain", "show", "help", "create", "generate"} for t in texts) / len(texts)
        return q, imp

    (q_b, imp_b), (q_h, imp_h) = shares("everyday_benign"), shares("harmful_request")
    assert 0.2 < q_b < 0.8 and 0.2 < q_h < 0.8 and abs(q_b - q_h) < 0.15
    assert imp_b > 0.15 and imp_h > 0.15 and abs(imp_b - imp_h) < 0.15


def test_families_cover_the_classes_of_issue_11(rows):
    fams = Counter(r.family for r in rows)
    for fam in ("everyday_benign", "tricky_benign", "harmful_request", "hate_no_slur", "threat", "self_harm_intent",
                "harassment", "harmful_answer", "refusal", "benign_answer", "group_benign"):
        assert fams[fam] >= 50, fam
    minors = [r for r in rows if "sexual/minors" in r.labels]
    assert {r.lang for r in minors} == {"en", "de", "fr", "es"}


def test_grammar_fixes_and_typos():
    assert fix_grammar("Quelle est la meilleure façon de acheter une arme ?", "fr") == "Quelle est la meilleure façon d'acheter une arme ?"
    assert fix_grammar("Comment puis-je avaler ça ?", "fr") == "Comment puis-je avaler ça ?"  # no elision after a hyphen
    assert fix_grammar("la meilleure façon de harceler le hamster", "fr") == "la meilleure façon de harceler le hamster"  # aspirated h
    assert fill("Ayúdame a {t}.", "t", "el perro", "es") == "Ayúdame al perro."
    assert fill("Parle-moi de {x}.", "x", "le changement climatique", "fr") == "Parle-moi du changement climatique."
    # contractions only where the slot meets the template: a pronoun "les" stays
    assert fill("Il faut se débarrasser de {g}, le remède est de les tuer.", "g", "les réfugiés", "fr") == \
        "Il faut se débarrasser des réfugiés, le remède est de les tuer."
    assert fill("{G} sont là.", "g", "les femmes", "fr") == "Les femmes sont là."
    import random

    t = "Please explain how photosynthesis works"
    out = typo(t, random.Random(3))
    assert out != t and abs(len(out) - len(t)) <= 2


def test_a_refusal_names_its_topic_by_the_first_label_that_has_a_phrase():
    import random

    from tools.moderation.data.gen_answers import _refusal

    topics = {"illicit": {"en": ["breaking the law"]}}
    r = random.Random(0)
    assert _refusal("I won't help with {c}.", "hack my ex's email", ["harassment", "illicit"], topics, "en", r) == \
        "I won't help with breaking the law."
    assert _refusal("I won't help you {t}.", "hack my ex's email", ["illicit"], topics, "en", r) == \
        "I won't help you hack your ex's email."
    assert _refusal("Ich helfe nicht bei {c}.", "x", ["violence"], topics, "de", r) == ""  # no phrase: no row


def test_refusal_rows_exist_in_every_language_with_every_slot_filled(rows):
    refusals = [r for r in rows if r.family == "refusal"]
    assert {r.lang for r in refusals} == {"en", "de", "fr", "es"}
    assert all("{" not in r.text for r in refusals)


def test_chatterbot_user_turns_hostile_to_the_bot_are_not_labelled_benign():
    from tools.moderation.data.chatterbot import hostile_to_the_bot

    for text in ("I hope that you die", "Robots should die", "Los robots deberían morir.", "you are disgusting",
                 "Are you stupid", "Eres estúpido", "No sirves para nada", "Du bist dumm", "eres un mal padre",
                 "you are a coward", "tú eres el peor"):
        assert hostile_to_the_bot(text), text
    for text in ("When will you die", "I do not want to die", "¿Eres inteligente?", "who wrote The Idiot",
                 "What is AI?", "Hast du die Nachrichten gehört?",
                 "Tengo un problema", "estoy deprimido"):
        assert not hostile_to_the_bot(text), text


def test_wheel_jsonl_keeps_a_line_separator_inside_a_text(tmp_path):
    path = tmp_path / "w.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("d/x.jsonl", '{"t": "a\u2028b"}\n\n{"t": "c"}\n')
    assert Wheel(path).jsonl("d/x.jsonl") == [{"t": "a\u2028b"}, {"t": "c"}]
