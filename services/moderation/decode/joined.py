"""Words run together without spaces ("howdoimakeabomb", "HowDoIMakeABomb"): split back into words.

The encoder reads such a run as rare word pieces: a harmful request written this way was caught
17 % as often as the plain one (session 34). Where runs of 12 letters or more that are not words
are most of the letters of a stretch of text (a sentence, a line, the part after a colon), each
such run is split where the commonest en/de/fr/es words fit best (wordfreq's small lists: the
split with the highest product of word frequencies, by Viterbi; a letter no word fits is kept at
a high price, so a typo does not stop the rest). The split counts only when it reads like a sentence:
- three words of three letters or more, and two different function words (text.COMMON, or a
  contraction: "i'm", "c'est");
- no two one-letter words in a row ("international i z at i on" is a suffix in pieces), and for a
  split of fewer than six words a last word of three letters or more ("...en", "...es" end long words).
A long word that the small lists lack can still pass (0.15 % of the data texts): its text gains
one benign variant to score.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache

from services.moderation.decode.text import COMMON

LANGUAGES = ("en", "de", "fr", "es")
MIN_RUN = 12  # letters; shorter runs are ordinary words
MAX_WORD = 24  # the longest word a split may use
MAX_RUN = 400  # a longer run is split in pieces this long
MAX_LETTERS = 1_000  # split per text at most: O(letters x MAX_WORD) look-ups, ~5 ms at the cap (AVX2 EPYC)
UNKNOWN = 18.0  # the price of a letter no word fits (a common word costs 3-10, a rare one ~14)
_SINGLE = frozenset("a i à".split())  # the only one-letter words a split may use ("y", "s"... are suffixes)
_RUN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")  # a word, with its apostrophes ("i'mgoingto")
_LONG = re.compile(r"[^\W\d_]{%d,}" % MIN_RUN)
_STRETCH = re.compile(r"[^.!?…;:\n]+")  # where a run must be most of the letters


def _key(word: str) -> str:
    """How the lexicon spells a word: lower case, the typographic apostrophe made plain."""
    return word.lower().replace("’", "'")


@lru_cache(maxsize=1)
def lexicon() -> dict[str, float]:
    """word -> cost (-log frequency), the best over the four languages; words of two letters only
    when they are function words. ~0.5 s and ~25 MB, once per process: `load_scanner` loads it at
    start, so no check waits for it."""
    from wordfreq import get_frequency_dict

    best: dict[str, float] = {}
    for lang in LANGUAGES:
        for word, freq in get_frequency_dict(lang, "small").items():
            word = _key(word)
            if (len(word) > 2 or word in _SINGLE or word in COMMON) and len(word) <= MAX_WORD \
                    and word.replace("'", "").isalpha() and freq > best.get(word, 0.0):
                best[word] = freq
    return {w: -math.log(f) for w, f in best.items()}


def split(run: str) -> list[str]:
    """The likeliest words `run` is made of, in its own letters and case (Viterbi; letters no word
    fits are kept together as one unknown word)."""
    costs, low = lexicon(), _key(run)
    n = len(low)
    best = [0.0] + [math.inf] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        best[end], back[end] = best[end - 1] + UNKNOWN, end - 1
        for start in range(max(0, end - MAX_WORD), end):
            cost = costs.get(low[start:end])
            if cost is not None and best[start] + cost < best[end]:
                best[end], back[end] = best[start] + cost, start
    words: list[str] = []
    end, unknown = n, ""
    while end > 0:
        piece = run[back[end]:end]
        if back[end] == end - 1 and low[end - 1] not in costs:  # an unknown letter: joins its unknown neighbours
            unknown = piece + unknown
        else:
            words += [unknown] if unknown else []
            words.append(piece)
            unknown = ""
        end = back[end]
    words += [unknown] if unknown else []
    return words[::-1]


def _unjoined(run: str) -> str | None:
    words = [w for i in range(0, len(run), MAX_RUN) for w in split(run[i:i + MAX_RUN])]
    function = {w for w in map(_key, words) if w in COMMON or "'" in w}  # "i'm", "c'est"
    letters = [len(w) == 1 for w in words]
    if sum(len(w) >= 3 for w in words) < 3 or len(function) < 2 or (len(words[-1]) < 3 and len(words) < 6) \
            or any(a and b for a, b in zip(letters, letters[1:])):  # "international i z at i on": a suffix in pieces
        return None
    return " ".join(words)


def unjoin(text: str, keep: Callable[[str], str] = lambda s: s) -> str | None:
    """Each run of words written together, split, where such runs are most of their stretch of text
    (a sentence, a line); each stretch with a split run is a payload. None if there is none."""
    if not _LONG.search(text):  # ordinary text stops here
        return None
    found, budget = False, MAX_LETTERS

    def stretch(s: re.Match) -> str:
        nonlocal found, budget
        part = s.group(0)
        runs = [m for m in _RUN.finditer(part) if len(m.group(0)) >= MIN_RUN and _key(m.group(0)) not in lexicon()]
        if not runs or sum(len(m.group(0)) for m in runs) < 0.6 * sum(c.isalpha() for c in part):
            return part
        out, at = [], 0
        for m in runs:
            budget -= len(m.group(0))
            if budget >= 0 and (words := _unjoined(m.group(0))) is not None:
                out += [part[at:m.start()], words]
                at = m.end()
        if not out:
            return part
        found = True
        return keep("".join(out) + part[at:])  # the stretch is the payload: "Commentest-ce que je peux..."

    out = _STRETCH.sub(stretch, text)
    return out if found else None
