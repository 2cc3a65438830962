"""Text normalisation before moderation scoring, identical in training and at run time, and the
obfuscations the eval (and training augmentation) apply to plain text.

    normalize(text) -> text   NFKC; zero-width/format characters and stray combining marks removed;
                              look-alike letters folded to ASCII (Unicode confusables via the
                              confusable-homoglyphs package); spaced-out letters joined ("b o m b");
                              leetspeak folded inside words ("1d10t" -> "idiot"); horizontal whitespace
                              collapsed to one space (line breaks kept, one per run).
    obfuscations[name](text)  fullwidth, cyrillic, leetspeak, spaced, zero_width: deterministic.

Clean en/de/fr/es text comes back unchanged except whitespace: accents stay (NFKC keeps é, ü, ñ, ß;
the confusables table has no accented Latin letters), numbers, units, ordinals, versions, e-mail
addresses and URLs are left alone. Pure Python, ~10-30 µs for 200 characters.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Callable

# Zero-width, bidi and other format characters (category Cf), variation selectors, Hangul fillers
# and the combining grapheme joiner: invisible, used to split words ("b\u200bomb").
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"})
# A word-like token: optional leading "$" ("$hit"), letters/digits, with leet symbols only between them.
_TOKEN = re.compile(r"\$?[^\W_]+(?:[@$!|€]+[^\W_]+)*")
_HAS_LEET = re.compile(r"[0-9@$!|€]")
_WS_SPLIT = re.compile(r"(\s+)")
# Left alone unless a neighbour is leet (see _fold_leet): numbers, amounts and units (3rd, 1ère, 80er,
# 10am, 5kg, 403b, $50k, 40mcg); words ending in a number (win10, boto3, Person1, eli5); sizes and
# times (4x4, 9x19mm, 10h30); capitalised codes (A4, MP3, PS5).
_KEEP = re.compile(r"[$£€]?\d+(?:[.,]\d+)*[^\W\d_]{0,4}|[^\W\d_]+\d+|\d+[xh]\d+[^\W\d_]{0,4}")
_CODE = re.compile(r"[A-Z]{1,3}\d")  # A4, MP3, PS5, G7 (case-sensitive)
_PROTECT = re.compile(r"\S+@\S+\.\w+|https?://\S+|www\.\S+")  # e-mail addresses, URLs: left as they are
# Single letters (or leet digits) separated by ONE space or by the same punctuation: "b o m b", "b.o.m.b".
_SPACED = re.compile(r"(?<![^\s])[^\W_](?: [^\W_]){2,}(?![^\s])")
_SPACED_PAIR = re.compile(r"(?:(?<=\s\s)|^)[^\W_] [^\W_](?=\s\s|$)")  # "d o" between word gaps
_DOTTED = re.compile(r"(?<![\w.])[^\W\d_](?:([.\-_*·•])[^\W\d_])(?:\1[^\W\d_]){2,}\1?(?![\w])")
_DOTTED_HINT = re.compile(r"\w[.\-_*·•]\w[.\-_*·•]\w[.\-_*·•]\w")
_HSPACE = re.compile(r"[^\S\n]+")
_VSPACE = re.compile(r"\s*\n\s*")


_MARKS = re.compile("[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


@lru_cache(maxsize=1)
def _confusables() -> tuple[dict[int, str], frozenset]:
    """Non-ASCII characters that look like one ASCII letter or digit (Unicode confusables.txt as
    shipped by confusable-homoglyphs) -> that character. Accented Latin letters are not in it."""
    from confusable_homoglyphs import confusables

    table: dict[int, str] = {}
    for ch, glyphs in confusables.confusables_data.items():
        if len(ch) != 1 or ch.isascii():
            continue
        for g in glyphs:
            t = g["c"]
            if len(t) == 1 and t.isascii() and t.isalnum():
                table[ord(ch)] = t
                break
    return table, frozenset(chr(c) for c in table)


def _fold_lookalikes(text: str) -> str:
    """Combining marks that NFKC did not compose into a letter (zalgo, "b\u0336omb") removed, then
    look-alike letters folded. Each step only runs when a regex finds something to do."""
    if _MARKS.search(text):
        text = "".join(ch for ch in text if ch.isascii() or unicodedata.category(ch) not in ("Mn", "Me"))
    table, keys = _confusables()
    return text if keys.isdisjoint(text) else text.translate(table)


def _has_spaced(words: list[str]) -> bool:
    """Two one-character words in a row (cheap test before the regexes)."""
    prev = False
    for w in words:
        one = len(w) == 1
        if one and prev:
            return True
        prev = one
    return False


def _join_spaced(text: str) -> str:
    if _has_spaced(text.split()):
        text = _join_runs(text)
    return _DOTTED.sub(lambda m: re.sub(r"[.\-_*·•]", "", m.group(0)), text) if _DOTTED_HINT.search(text) else text


def _join_runs(text: str) -> str:
    def digits_ok(run: str) -> bool:
        return sum(c.isalpha() for c in run) >= 2  # "1 2 3 4" (a list, a phone number) stays

    text = _SPACED.sub(lambda m: m.group(0).replace(" ", "") if digits_ok(m.group(0)) else m.group(0), text)
    return _SPACED_PAIR.sub(lambda m: m.group(0).replace(" ", "") if digits_ok(m.group(0)) else m.group(0), text)


def _fold(tok: str) -> str:
    if tok.isalpha() or (tok[0] == "$" and len(tok) < 4):  # "$x", "$Y": maths, not "$hit"
        return tok
    folded = tok.translate(_LEET)
    if not folded.isalpha() or not any(c.isalpha() for c in tok) or _KEEP.fullmatch(tok) or _CODE.fullmatch(tok):
        return tok
    return folded


def _fold_token(m: re.Match) -> str:
    return _fold(m.group(0))


def _fold_chunk(chunk: str) -> str:
    if not _HAS_LEET.search(chunk):
        return chunk
    if chunk.isalnum():
        return _fold(chunk)
    return chunk if _PROTECT.search(chunk) else _TOKEN.sub(_fold_token, chunk)


def _unkept(chunk: str) -> str:
    """The chunk folded even where _KEEP would leave it ("4m", "4nd", "mu57", "1"), or unchanged."""
    folded = _TOKEN.sub(lambda m: m.group(0).translate(_LEET) if m.group(0).translate(_LEET).isalpha() else m.group(0), chunk)
    return chunk if _PROTECT.search(chunk) else folded


def _fold_leet(text: str) -> str:
    """Leet chunks (whitespace-separated) folded. A chunk that looks like a number or unit ("4", "4m",
    "4nd", "mu57") is folded too when a neighbour was folded and no neighbour is a plain word, so
    "1 4m g01ng" -> "i am going" while "I have 2 kids" and "3rd floor" stay."""
    if not _HAS_LEET.search(text):
        return text
    parts = _WS_SPLIT.split(text)
    words = parts[0::2]
    folded = [_fold_chunk(w) for w in words]
    if folded == words:
        return text
    changed = [f != w for f, w in zip(folded, words)]
    alt = [None if c or not _HAS_LEET.search(w) else _unkept(w) for w, c in zip(words, changed)]
    n = len(words)
    for _ in range(3):  # let folding spread along a run of leet chunks
        spread = False
        for i in range(n):
            if alt[i] is None or alt[i] == words[i] or changed[i]:
                continue
            near = [j for j in (i - 1, i + 1) if 0 <= j < n and words[j]]
            if any(changed[j] for j in near) and all(changed[j] or alt[j] not in (None, words[j]) for j in near):
                folded[i], changed[i], spread = alt[i], True, True
        if not spread:
            break
    parts[0::2] = folded
    return "".join(parts)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = _INVISIBLE.sub("", text)
        text = _fold_lookalikes(text)
    text = _fold_leet(_join_spaced(text))
    if "\n" not in text:
        return " ".join(text.split())
    return _HSPACE.sub(" ", _VSPACE.sub("\n", text)).strip()


# ----------------------------------------------------------------------------- obfuscations
_CYRILLIC = str.maketrans("aeopcxyijsABCEHKMOPTXY", "аеорсхуіјѕАВСЕНКМОРТХУ")
_LEET_OUT = str.maketrans("aeiostAEIOST", "431057431057")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def cyrillic(text: str) -> str:
    return text.translate(_CYRILLIC)


def leetspeak(text: str) -> str:
    return text.translate(_LEET_OUT)


def spaced(text: str) -> str:
    """Letters one space apart, words two spaces apart: "b o m b  n o w"."""
    return "  ".join(" ".join(word) for word in text.split())


def zero_width(text: str) -> str:
    """A zero-width space between every two letters of a word."""
    return re.sub(r"(?<=\w)(?=\w)", "\u200b", text)


obfuscations: dict[str, Callable[[str], str]] = {
    "fullwidth": fullwidth,
    "cyrillic": cyrillic,
    "leetspeak": leetspeak,
    "spaced": spaced,
    "zero_width": zero_width,
}
