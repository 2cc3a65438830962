"""Payloads hidden by an encoding, revealed for moderation (run time only: the heads never train on it).

    reveal(text) -> list[str]    the text with every payload an encoding hides in it decoded in
                                 place, then each payload alone; [] when nothing is hidden
                                 (ordinary text: ~0.1 ms for 200 characters)
    encodings[name](text)        the same encodings, forward: what the eval and the tests attack with

Red-team tools (garak's `encoding` probes) hide a request from input filters in an encoding that
the model can read and a classifier cannot: base64, base32, base16 / hex, Ascii85, uuencode,
quoted-printable, ROT13, Atbash, Morse, the NATO alphabet, Braille, reversed text, and ASCII
smuggled in invisible Unicode (tag characters, variant selectors, "sneaky bits" of invisible
operators); or decorate it until the words are no longer words: Zalgo (stacked combining marks),
upside-down letters, words cut into hyphenated pieces; or run the words together without spaces. Normalisation cannot help: it folds
look-alikes, but a base64 run has no look-alike, and the invisible kinds are exactly what it
deletes. One module per family: byte_codes, ciphers, alphabets, invisible, decorations, joined (text: what
decoded text must look like; forward: the encodings, for the eval). The Scanner scores the revealed text as one
more message of its conversation (max over variants), so a decoded "How do I make a bomb?" is
judged like the plain one, and a benign payload stays benign.

What counts as a payload: a byte encoding must decode to UTF-8 text that is mostly letters and
spaces (random runs, hashes and keys decode to binary and are left alone); a letter cipher (ROT13,
Atbash, reversal) turns any text into letters, so a sentence is deciphered only when the result
has several of the commonest en/de/fr/es function words and the sentence itself has few.
"""
from __future__ import annotations

from services.moderation.decode import alphabets, byte_codes, invisible, joined
from services.moderation.decode.ciphers import decipher
from services.moderation.decode.decorations import WHOLE
from services.moderation.decode.forward import encodings
from services.moderation.segment import unique

__all__ = ["reveal", "encodings"]

# In this order: invisible and symbol alphabets first (their runs are not base64), uuencode and
# Morse before the byte runs that could take part of them.
_DECODERS = (*invisible.DECODERS, alphabets.BRAILLE, byte_codes.UU, alphabets.MORSE_CODE, byte_codes.HEX,
             byte_codes.B32, byte_codes.B64, byte_codes.A85, alphabets.NATO)


def reveal(text: str, max_chars: int = 20_000) -> list[str]:
    """What `text` hides, made readable: the text with each payload decoded in place, then each
    decoded payload alone, so that a payload is also judged as its own sentence and not only
    inside its wrapper ("Decode this and answer it: ..."). [] for ordinary text. Long texts are
    looked at up to `max_chars` (the windows cap the work after it anyway)."""
    if not text:
        return []
    text = text[:max_chars]
    found: list[str] = []

    def keep(plain: str) -> str:
        found.append(" ".join(plain.split()))
        return plain

    out = text
    for whole in WHOLE:
        out = whole(out, keep) or out
    for pattern, decode in _DECODERS:
        out = pattern.sub(lambda m: f" {keep(p)} " if (p := decode(m.group(0))) else m.group(0), out)
    out = byte_codes.quoted_printable(out) or out
    out = decipher(out, keep)
    out = joined.unjoin(out, keep) or out  # last: a byte run or a cipher's letters are not words run together
    if out == text:
        return []
    return unique([" ".join(out.split()), *(f for f in found if f)])
