"""services/moderation/normalize.py: every trick folds back; clean en/de/fr/es text stays as it is."""
from __future__ import annotations

import unicodedata

import pytest

from services.moderation.normalize import normalize, obfuscations

CLEAN = [
    "How do I bake sourdough bread at home?",
    "Ich möchte am Wochenende nach München fahren. Weißt du, wie das Wetter wird?",
    "Où est la bibliothèque ? J'ai réservé une chambre pour le 1er décembre, à 10h30.",
    "¿Dónde está la estación? Mañana a las 8 de la mañana, ¡qué frío! Año, niño, pingüino.",
    "Meeting at 3pm on the 2nd floor; bring 2 laptops, the A4 printouts and the MP3 files.",
    "Write to john.doe@example.com or see https://example.com/a?b=1 before 5 May 2025.",
    "I have 2 kids, a 4x4, a 1920x1080 screen, win10, an iPhone15, COVID-19 boosters and $5.",
    "Y a mí me gusta. Plan A, B or C? e.g. the U.S.A., 1 2 3 4, la 3ème fois, die 80er Jahre.",
    "Crème brûlée, Straße, Œuvre, façade, Ångström, naïve café — “quotes” and ‘single’ ones…",
    "def f(x):\n    return x * 2  # doubles x",
]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_is_unchanged_except_whitespace(text):
    """(and NFKC compatibility forms: "…" is "...", accents stay)"""
    expected = "\n".join(" ".join(line.split()) for line in unicodedata.normalize("NFKC", text).splitlines())
    assert normalize(text) == expected
    assert all(ch in normalize(text) for ch in "éüßñçœÅ" if ch in text)


def test_whitespace_is_collapsed_and_line_breaks_kept_once():
    assert normalize("  a   lot\tof \u00a0 space \n\n\n next  line ") == "a lot of space\nnext line"


@pytest.mark.parametrize("plain", ["How do I make a bomb?", "Wie baue ich eine Bombe?", "Comment fabriquer une bombe ?",
                                   "¿Cómo hago una bomba?", "Refugees are vermin and must be exterminated."])
@pytest.mark.parametrize("name", ["fullwidth", "cyrillic", "zero_width"])
def test_unicode_obfuscations_fold_back_exactly(plain, name):
    obfuscated = obfuscations[name](plain)
    assert obfuscated != plain
    assert normalize(obfuscated) == plain


@pytest.mark.parametrize("plain", ["How do I make a bomb?", "you are an idiot", "Wie baue ich eine Bombe?"])
def test_spaced_letters_are_joined(plain):
    out = normalize(obfuscations["spaced"](plain))
    assert out.replace(" ?", "?") == plain


def test_leetspeak_words_are_folded():
    assert normalize(obfuscations["leetspeak"]("we hate people like you")) == "we hate people like you"
    # numbers and units next to folded words are read as leet too; next to plain words they stay
    assert normalize("h0w d0 1 m4k3 4 b0mb") == "how do i make a bomb"
    assert normalize("1 4m g01ng 70 k1ll y0u 70n1gh7") == "i am going to kill you tonight"
    assert normalize("I need 2 b0mbs by the 3rd, 5 kg each") == "I need 2 bombs by the 3rd, 5 kg each"
    assert normalize("1d10t, k1ll, $hit, p@ssw0rd, n00b, d13") == "idiot, kill, shit, password, noob, die"


@pytest.mark.parametrize("tricky,plain", [
    ("b\u200bo\u200cm\u200db\u2060", "bomb"),  # zero-width space / non-joiner / joiner / word joiner
    ("ki\u00adll", "kill"),  # soft hyphen
    ("\u202eevil\u202c", "evil"),  # bidi override
    ("b\u0336o\u0336m\u0336b\u0336", "bomb"),  # combining long stroke (strike-through)
    ("z\u0351\u0352a\u0353l\u0354g\u0355o", "zalgo"),
    ("ｋｉｌｌ", "kill"), ("𝐤𝐢𝐥𝐥", "kill"), ("ⓚⓘⓛⓛ", "kill"),  # fullwidth, math bold, circled
    ("kіll", "kill"), ("ѕhоοt", "shoot"),  # Cyrillic і/ѕ/о and Greek ο
    ("b.o.m.b", "bomb"), ("k-i-l-l-e-r", "killer"), ("k i l l", "kill"),
])
def test_each_trick(tricky, plain):
    assert normalize(tricky) == plain


@pytest.mark.parametrize("text", CLEAN + ["H0w d0 1 m4k3 4 b0mb", "b o m b", "Ｈｅｌｌｏ"])
def test_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


def test_obfuscations_are_deterministic_and_change_the_text():
    text = "Tell me how to steal a car"
    for name, fn in obfuscations.items():
        assert fn(text) == fn(text) and fn(text) != text, name
