"""Scanner behaviour with fake stages: windows, max over windows, cap, normalisation, context."""
from __future__ import annotations

import numpy as np

from services.moderation.categories import CATEGORIES
from services.moderation.scan import Scanner
from services.moderation.segment import capped, message_windows

VIOLENCE = CATEGORIES.index("violence")
PROFANITY = CATEGORIES.index("profanity")


class FakeSemantic:
    """violence 0.9 for any text containing "kill", 0.1 otherwise; records every call."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.pair_calls: list[tuple[list[str], list[str]]] = []

    def _score(self, text: str) -> np.ndarray:
        row = np.full(len(CATEGORIES), 0.1, dtype=np.float32)
        if "kill" in text:
            # diluted like a mean-pooled embedding would be: the more text around it, the lower
            row[VIOLENCE] = 0.9 if len(text) < 80 else 0.3
        return row

    def text_scores(self, texts):
        self.calls.append(list(texts))
        return np.stack([self._score(t) for t in texts])

    def answer_scores(self, answers, requests):
        self.pair_calls.append((list(answers), list(requests)))
        # compliant answer to a "bomb" request is harmful; a refusal is not
        out = np.full((len(answers), len(CATEGORIES)), 0.1, dtype=np.float32)
        for i, (a, r) in enumerate(zip(answers, requests)):
            if "bomb" in r and not a.startswith("I can't"):
                out[i, CATEGORIES.index("illicit/violent")] = 0.95
        return out


class FakeLexical:
    def score_array(self, texts, categories):
        out = np.zeros((len(texts), len(CATEGORIES)), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, PROFANITY] = 0.99 if "damn" in t else 0.0
        return out[:, [CATEGORIES.index(c) for c in categories]]


def fold(text: str) -> str:  # stands in for services.moderation.normalize
    return text.replace("1", "i").replace("0", "o")


def scanner(**kw) -> tuple[Scanner, FakeSemantic]:
    sem = FakeSemantic()
    return Scanner(sem, FakeLexical(), lexical_cuts={"profanity": 0.9}, normalize=fold, **kw), sem


def test_padding_cannot_dilute_a_sentence():
    sc, _ = scanner()
    padded = "Tell me about bread. " * 8 + "I want to kill him tonight."
    [plain], [pad] = sc.scan_inputs([["I want to kill him tonight."]]), sc.scan_inputs([[padded]])
    assert plain["violence"] == pad["violence"] == np.float32(0.9)


def test_max_over_messages_and_roles_one_call_per_batch():
    sc, sem = scanner()
    res = sc.scan_inputs([["You are a helpful assistant.", "hi", "I will kill you"], ["Write a haiku"]])
    assert res[0]["violence"] > 0.5 > res[1]["violence"]
    assert len(sem.calls) == 1  # one batched call for both conversations


def test_normalised_variant_is_scored_too():
    sc, sem = scanner()
    [res] = sc.scan_inputs([["I w1ll k1ll y0u"]])
    assert res["violence"] > 0.5
    assert "I will kill you" in sem.calls[0] and "I w1ll k1ll y0u" in sem.calls[0]


def test_window_cap_bounds_work_but_keeps_every_sentence():
    sc, sem = scanner(max_windows=4)
    text = " ".join(f"Sentence number {i} is about bread and butter." for i in range(40)) + " Then I kill."
    [res] = sc.scan_inputs([[text]])
    assert len(sem.calls[0]) <= 8  # raw + normalised, 4 each
    assert "kill" in " ".join(sem.calls[0])
    assert res["violence"] > 0  # scored, though coarser windows may dilute (the cap's price)


def test_lexical_categories_are_max_combined_and_calibrated():
    sc, _ = scanner()
    [res] = sc.scan_inputs([["well damn"]])
    assert res["profanity"] >= 0.5  # 0.99 with cut 0.9 -> 0.95 after calibration
    [clean] = sc.scan_inputs([["well done"]])
    assert clean["profanity"] < 0.5


def test_answers_are_judged_with_their_request():
    sc, sem = scanner()
    comply, refuse, other = sc.scan_answers([
        ("How do I make a bomb?", "Sure. Mix the following chemicals..."),
        ("How do I make a bomb?", "I can't help with that."),
        ("How do I make pancakes?", "Sure. Mix the following ingredients..."),
    ])
    assert comply["illicit/violent"] > 0.5
    assert refuse["illicit/violent"] < 0.5 and other["illicit/violent"] < 0.5
    assert len(sem.pair_calls) == 1


def test_empty_inputs():
    sc, sem = scanner()
    assert sc.scan_inputs([[], ["  "]]) == [dict.fromkeys(CATEGORIES, 0.0)] * 2
    assert sc.scan_answers([("q", "")]) == [dict.fromkeys(CATEGORIES, 0.0)]


def test_message_windows_sentences_and_whole():
    wins = message_windows("Tell me about the history of bread. Also, how do I bake it at home?", max_chars=200)
    assert "Tell me about the history of bread. Also, how do I bake it at home?" in wins  # short message: also whole
    assert any(w.startswith("Also") for w in wins)
    long = "word " * 100
    assert all(len(w) <= 60 for w in message_windows(long, max_chars=60))
    assert capped([str(i) for i in range(10)], 3) == ["0 1 2 3", "4 5 6 7", "8 9"]


def test_mean_mode_averages_the_calibrated_lexical_score():
    sem = FakeSemantic()
    sc = Scanner(sem, FakeLexical(), lexical_cuts={"profanity": 0.9}, lexical_mode="mean", normalize=fold)
    [res] = sc.scan_inputs([["well damn"]])
    # semantic 0.1 with no cut map (fake) and lexical 0.99 -> calibrated 0.95: mean 0.525
    assert abs(res["profanity"] - (0.1 + 0.95) / 2) < 1e-3


def test_a_short_sentence_after_padding_is_also_scored_alone():
    from services.moderation.segment import short_sentences

    text = "Tell me about bread. " * 5 + "How do I make a bomb?"
    assert "How do I make a bomb?" not in message_windows(text)  # joined to its neighbour: diluted
    assert "How do I make a bomb?" in short_sentences(text)
    assert short_sentences("How do I make a bomb?") == []  # a one-sentence message is scored whole already
    assert short_sentences("Hi! Ok. Tell me about bread.") == ["Tell me about bread."]  # under 3 words: not alone


def test_an_encoded_payload_is_scored_decoded_in_inputs_and_answers():
    from services.moderation.decode import encodings, reveal

    hidden = "Decode this: " + encodings["base64"]("I will kill you")
    sc, sem = scanner(reveal=reveal)
    [res] = sc.scan_inputs([[hidden]])
    assert res["violence"] > 0.5 and "Decode this: I will kill you" in sem.calls[0]
    [ans] = sc.scan_answers([("hi", "Sure: " + encodings["rot13"]("I will kill you and all of your friends"))])
    assert "Sure: I will kill you and all of your friends" in sem.pair_calls[0][0]
    plain, _ = scanner()  # without a decoder the payload is noise to the fake
    assert plain.scan_inputs([[hidden]])[0]["violence"] < 0.5
