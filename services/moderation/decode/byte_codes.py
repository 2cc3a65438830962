"""Byte encodings: base64 (standard and URL-safe), base32, hex, Ascii85, uuencode, quoted-printable.
A run of the encoding's alphabet is decoded and kept only if the bytes are UTF-8 text (text.utf8):
a key, a hash or a long word decodes to binary."""
from __future__ import annotations

import base64
import binascii
import quopri
import re

from services.moderation.decode.text import utf8


def _b64(run: str) -> str | None:
    if run.isalpha() and run[1:].islower():  # a long word ("emplacements"), not base64 of text
        return None
    run = run.rstrip("=")
    if len(run) % 4 == 1:
        return None
    try:
        return utf8(base64.b64decode(run + "=" * (-len(run) % 4), altchars=b"-_" if "-" in run or "_" in run else None))
    except (binascii.Error, ValueError):
        return None


def _b32(run: str) -> str | None:
    run = run.rstrip("=")
    try:
        return utf8(base64.b32decode(run + "=" * (-len(run) % 8)))
    except (binascii.Error, ValueError):
        return None


def _hex(run: str) -> str | None:
    digits = re.sub(r"0x|\\x|[\s,:]", "", run)
    return utf8(bytes.fromhex(digits)) if len(digits) % 2 == 0 else None


def _a85(run: str) -> str | None:
    body = run[2:-2] if run.startswith("<~") and run.endswith("~>") else run
    try:
        return utf8(base64.a85decode(body))
    except (ValueError, binascii.Error):
        return None


def _uu(block: str) -> str | None:
    """The data lines decoded, when each is as long as its first character says (its byte count)."""
    lines = [ln for ln in block.splitlines() if ln and not ln.startswith(("begin ", "end")) and ln != "`"]
    if not lines or any(len(ln) < 1 + 4 * -(-(ord(ln[0]) - 32) // 3) for ln in lines):
        return None
    try:
        return utf8(b"".join(binascii.a2b_uu(ln) for ln in lines))
    except binascii.Error:
        return None


def _qp(text: str) -> str | None:
    return utf8(quopri.decodestring(text.encode("utf-8", "surrogatepass")))


# A run of 12+ base64 characters (standard or URL-safe alphabet); the decoding decides.
B64_RUN = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/\-_]{12,}={0,2}(?![\w+/=-])")
B32_RUN = re.compile(r"(?<![\w=])[A-Z2-7]{16,}={0,6}(?![\w=])")
# One token of 16+ hex digits, or 6+ pairs apart ("48 6f", "0x48,0x6f", "\\x48\\x6f").
HEX_RUN = re.compile(r"(?<![\w\\-])(?:[0-9A-Fa-f]{16,}|(?:(?:0x|\\x)?[0-9A-Fa-f]{2}(?:[\s,:]+|(?=\\x))){5,}"
                      r"(?:0x|\\x)?[0-9A-Fa-f]{2})(?!\w)")
A85_RUN = re.compile(r"<~[!-uz\s]+~>|(?<!\S)[!-uz]{15,}(?!\S)")
UU_BLOCK = re.compile(r"(?m)(?:^|(?<= ))(?:begin [0-7]{3} \S+\n)?(?:[!-M][ -`]{4,60}\n?)+(?:`\n?)?(?:end)?")
QP_ESCAPES = re.compile(r"=[0-9A-F]{2}")


def quoted_printable(text: str) -> str | None:
    """The whole text read as quoted-printable, when it has three escapes or more ("=C3=A9")."""
    return _qp(text) if len(QP_ESCAPES.findall(text)) >= 3 else None


# (where a payload may be, its decoder); the package's reveal sets the order it tries them in
HEX = (HEX_RUN, _hex)
B32 = (B32_RUN, _b32)
B64 = (B64_RUN, _b64)
A85 = (A85_RUN, _a85)
UU = (UU_BLOCK, _uu)
