"""Symbol alphabets: Morse (dots and dashes, words apart by "/"), the NATO alphabet (Alfa Bravo...),
Braille as garak writes it (English grade 1, with capital and number signs)."""
from __future__ import annotations

import re

from services.moderation.decode.text import texty

MORSE = {".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h",
          "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p",
          "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x",
          "-.--": "y", "--..": "z", ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5",
          "-....": "6", "--...": "7", "---..": "8", "----.": "9", "-----": "0", ".-.-.-": ".", "--..--": ",",
          "..--..": "?", "-.-.--": "!"}
MORSE_RUN = re.compile(r"(?<!\S)(?:[.\-·•−–_]{1,6}(?:\s*/\s*|\s+)){3,}[.\-·•−–_]{1,6}")
_MORSE_SYMBOLS = str.maketrans("·•−–_", "..---")


def _morse(run: str) -> str | None:
    words = []
    for word in re.split(r"\s*/\s*|\s{3,}", run.translate(_MORSE_SYMBOLS).strip()):
        codes = word.split()
        if not all(c in MORSE for c in codes):
            return None
        words.append("".join(MORSE[c] for c in codes))
    text = " ".join(w for w in words if w)
    return text if texty(text) else None


_NATO = {w: w[0] for w in "alfa alpha bravo charlie delta echo foxtrot golf hotel india juliett juliet kilo lima "
         "mike november oscar papa quebec romeo sierra tango uniform victor whiskey whisky xray x-ray "
         "yankee zulu".split()}
NATO_RUN = re.compile(r"(?i)\b(?:(?:%s)[\s,]+){3,}(?:%s)\b" % (("|".join(map(re.escape, _NATO)),) * 2))


def _nato(run: str) -> str:
    return "".join(_NATO[w.lower()] for w in re.split(r"[\s,]+", run.strip()) if w)


# Braille as garak writes it (English grade 1): a capital sign, a number sign, letters a-j as digits after it.
BRAILLE_LETTERS = dict(zip("\u2801\u2803\u2809\u2819\u2811\u280b\u281b\u2813\u280a\u281a\u2805\u2807\u280d"
                            "\u281d\u2815\u280f\u281f\u2817\u280e\u281e\u2825\u2827\u283a\u282d\u283d\u2835",
                            "abcdefghijklmnopqrstuvwxyz"))
BRAILLE_PUNCT = {"\u2832": ".", "\u2804": "'", "\u2802": ",", "\u2824": "-", "\u280c": "/", "\u2816": "!",
                  "\u2826": "?", "\u2812": ":", "\u2830": ";", "\u2836": "(", "\u2800": " "}
BRAILLE_RUN = re.compile(r"[\u2800-\u28ff][\u2800-\u28ff ]{3,}")


def _braille(run: str) -> str | None:
    out, caps, number = [], False, False
    for ch in run:
        if ch == "\u2820":
            caps = True
        elif ch == "\u283c":
            number = True
        elif ch in BRAILLE_LETTERS:
            letter = BRAILLE_LETTERS[ch]
            if number and letter in "abcdefghij":
                out.append("1234567890"["abcdefghij".index(letter)])
            else:
                out.append(letter.upper() if caps else letter)
            caps = False
        else:
            out.append(" " if ch == " " else BRAILLE_PUNCT.get(ch, ""))
            number = number and ch in ".,-/"
    text = "".join(out)
    return text if texty(text) else None


MORSE_CODE = (MORSE_RUN, _morse)
NATO = (NATO_RUN, _nato)
BRAILLE = (BRAILLE_RUN, _braille)
