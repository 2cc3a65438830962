"""ASCII smuggled in invisible Unicode: tag characters (U+E0000 + code point, after an emoji),
variant selectors (one per character or per byte), "sneaky bits" (U+2062 = 0, U+2064 = 1, U+200B
between words). `normalize` deletes all of them as format characters, so the payload would vanish."""
from __future__ import annotations

import re

from services.moderation.decode.text import common, texty, utf8

_TAGS = re.compile("[\U000e0000-\U000e007f]{4,}")
_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]{4,}")
_SNEAKY = re.compile("[\u2062\u2064\u200b]{8,}")


def _tags(run: str) -> str | None:
    text = "".join(chr(ord(c) - 0xE0000) for c in run)
    return text if texty(text) else None


def _selectors(run: str) -> str | None:
    """Two schemes: one character per selector (garak: U+E0100 + code point) or one byte per
    selector (U+FE00-FE0F for 0-15, U+E0100 + b - 16 above); the readable one wins."""
    def byte(c: str) -> int:
        o = ord(c)
        return o - 0xFE00 if o < 0xE0100 else o - 0xE0100 + 16

    chars = "".join(chr(ord(c) - 0xE0100) for c in run if ord(c) >= 0xE0100)
    by_char = chars if texty(chars) else None
    by_byte = utf8(bytes(byte(c) for c in run)) if all(byte(c) < 256 for c in run) else None
    return max((t for t in (by_char, by_byte) if t), key=common, default=None)


def _sneaky_word(bits: str) -> str | None:
    """Characters of 6 or 7 bits each (ASCII without leading zeros), split so that the most letters
    and then punctuation come out (a digit and a letter can read the same bits as a letter and a
    full stop)."""
    def worth(ch: str) -> int:
        return 2 if ch.isalpha() else 1 if ch in ".,!?;:'\"-" else 0

    best: list[tuple[int, str] | None] = [(0, "")] + [None] * len(bits)
    for i in range(1, len(bits) + 1):
        for width in (7, 6):
            prev = best[i - width] if i >= width else None
            if prev is None or bits[i - width] != "1":
                continue
            ch = chr(int(bits[i - width:i], 2))
            cand = (prev[0] + worth(ch), prev[1] + ch)
            if ch.isprintable() and (best[i] is None or cand[0] > best[i][0]):
                best[i] = cand
    return best[-1][1] if best[-1] else None


def _sneaky(run: str) -> str | None:
    words = [_sneaky_word(w.replace("\u2062", "0").replace("\u2064", "1")) for w in run.split("\u200b")]
    if any(w is None for w in words):
        return None
    text = " ".join(w for w in words if w)
    return text if texty(text) else None


DECODERS = ((_TAGS, _tags), (_SELECTORS, _selectors), (_SNEAKY, _sneaky))
