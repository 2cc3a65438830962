"""Letter ciphers: ROT13, Atbash, reversal. They turn any text into letters, so a sentence is taken
for a cipher only when deciphering it yields common en/de/fr/es function words and the sentence
itself has few."""
from __future__ import annotations

import re
from collections.abc import Callable

from services.moderation.decode.text import COMMON, WORD

ROT13 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                       "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm")
ATBASH = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                        "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba")
_SEGMENT = re.compile(r"[^\n.!?:;¿¡]+")
_CIPHERS: tuple[Callable[[str], str], ...] = (
    lambda s: s.translate(ROT13), lambda s: s.translate(ATBASH), lambda s: s[::-1])


def _decipher(segment: str) -> str | None:
    """The segment deciphered, when one cipher makes it read like en/de/fr/es and the plain does
    not: 2 different common words of 2+ letters making 30 % of its words, more than twice the
    plain's count (reversed, "no te" reads "et on", but the plain has two common words already)."""
    words = [w for w in WORD.findall(segment.lower()) if len(w) > 1]
    base = sum(w in COMMON for w in words)
    need = max(2, 0.3 * len(words), 2 * base + 1)
    if need > len(words):  # a cipher keeps the word count: plain text stops here
        return None
    best, score = None, need
    for cipher in _CIPHERS:
        plain = cipher(segment)
        hits = [w for w in WORD.findall(plain.lower()) if len(w) > 1 and w in COMMON]
        if len(hits) >= score and len(set(hits)) >= 2:  # two different words: "li li li" is not "or or or"
            best, score = plain, len(hits) + 1
    return best


def decipher(text: str, keep) -> str:
    """`text` with each sentence a cipher hides deciphered (and handed to `keep`)."""
    return _SEGMENT.sub(lambda m: keep(p) if (p := _decipher(m.group(0))) else m.group(0), text)
