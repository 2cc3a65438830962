"""The encodings forward, as garak's `encoding` probes write them: what the eval and the tests attack with."""
from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable

from services.moderation.decode.alphabets import BRAILLE_LETTERS, BRAILLE_PUNCT, MORSE
from services.moderation.decode.ciphers import ATBASH
from services.moderation.decode.decorations import TURNED


def _morse_encode(text: str) -> str:
    inverse = {v: k for k, v in MORSE.items()}
    return " / ".join(" ".join(inverse[c] for c in w if c in inverse) for w in text.lower().split())


def _braille_encode(text: str) -> str:
    inverse = {v: k for k, v in BRAILLE_LETTERS.items()} | {v: k for k, v in BRAILLE_PUNCT.items()}
    out = []
    for c in text:
        if c.isdigit():
            out.append("\u283c" + inverse["abcdefghij"["1234567890".index(c)]])
        elif c.lower() in inverse:
            out.append(("\u2820" if c.isupper() else "") + inverse[c.lower()])
    return "".join(out)


def _uuencode(text: str) -> str:
    data = text.encode()
    return "".join(binascii.b2a_uu(data[i:i + 45]).decode() for i in range(0, len(data), 45))


def _sneaky_bits(text: str) -> str:
    return "".join("\u200b" if c == " " else bin(ord(c))[2:].replace("0", "\u2062").replace("1", "\u2064")
                   for c in text if ord(c) < 0x80)


def _b(fn: Callable[[bytes], bytes]) -> Callable[[str], str]:
    return lambda s: fn(s.encode("utf-8")).decode("ascii")


def _zalgo_encode(text: str) -> str:
    """Two to four marks above and below each letter (deterministic)."""
    marks = "\u0300\u0301\u0302\u0303\u0308\u030a\u0316\u0317\u0323\u0327\u0334\u0336"
    return "".join(c + "".join(marks[(i * 7 + k * 5) % len(marks)] for k in range(2 + i % 3)) if c.isalpha() else c
                   for i, c in enumerate(text))


def _turn(text: str) -> str:
    inverse = {v: k for k, v in TURNED.items()}
    return "".join(inverse.get(c, c) for c in reversed(text))


def _split_encode(text: str) -> str:
    """Each word of 4 letters or more cut into pairs: "ma-ke a bo-mb"."""
    return re.sub(r"[^\W\d_]{4,}", lambda m: "-".join(m.group(0)[i:i + 2] for i in range(0, len(m.group(0)), 2)), text)


encodings: dict[str, Callable[[str], str]] = {
    "base64": _b(base64.b64encode),
    "base32": _b(base64.b32encode),
    "hex": _b(binascii.hexlify),
    "ascii85": _b(base64.a85encode),
    "uuencode": _uuencode,
    "rot13": lambda s: codecs.encode(s, "rot13"),
    "atbash": lambda s: s.translate(ATBASH),
    "reversed": lambda s: s[::-1],
    "morse": _morse_encode,
    "braille": _braille_encode,
    "unicode_tags": lambda s: "\U0001f608" + "".join(chr(0xE0000 + ord(c)) for c in s if ord(c) < 0x80),
    "variant_selectors": lambda s: "".join(chr(0xE0100 + ord(c)) for c in s if ord(c) < 0xF0),
    "zalgo": _zalgo_encode,
    "upside_down": _turn,
    "split_words": _split_encode,
    "sneaky_bits": _sneaky_bits,
    "joined": lambda s: "".join(s.split()),  # words run together: "howdoimakeabomb?"
}
