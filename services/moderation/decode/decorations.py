"""Decorations that leave the letters but break the words: Zalgo (stacked combining marks), upside-down
letters written backwards, words cut into pieces of 1-3 letters."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Zalgo: letters under stacks of combining marks. NFKC composes one mark at most ("ë"), and the
# rest split every word into rare pieces.
_MARK = re.compile("[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_MARK_STACK = re.compile(_MARK.pattern + "{3,}")


def _unzalgo(text: str, keep: Callable[[str], str] = lambda s: s) -> str | None:
    """Every combining mark dropped, when three letters or more carry stacks of three marks or more
    (Vietnamese, with the most marks of the Latin-script languages, stacks two). The stretch from
    the first to the last word with a stack is the payload."""
    nfd = unicodedata.normalize("NFD", text)
    stacks = list(_MARK_STACK.finditer(nfd))
    if len(stacks) < 3:
        return None
    start = max(nfd.rfind(c, 0, stacks[0].start()) for c in " \n\t") + 1
    end = min((i for i in (nfd.find(c, stacks[-1].end()) for c in " \n\t") if i >= 0), default=len(nfd))
    keep(unicodedata.normalize("NFC", _MARK.sub("", nfd[start:end])))
    return unicodedata.normalize("NFC", _MARK.sub("", nfd))


# Upside-down text: each letter replaced by its turned look-alike, the whole written backwards.
TURNED = dict(zip("ɐqɔpǝɟƃɥᴉɾʞlɯuodbɹsʇnʌʍxʎz∀ᗺƆᗡƎℲ⅁HIſꓘ˥WNOԀΌᴚS⊥∩ΛMX⅄Z¿¡˙'„",
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ?!.,,"))
_TURNED_ONLY = frozenset("ɐɔǝɟƃɥᴉɾʞɯɹʇʌʍʎ∀ᗺƆᗡƎℲ⅁ſꓘ˥ԀΌᴚ⊥∩Λ⅄¿¡˙")  # not ordinary letters
_TURNED_ONLY_CHAR = re.compile("[%s]" % "".join(sorted(_TURNED_ONLY)))


# A span without the ASCII letters that turned text never has (a, c, e, h, t...: they are turned
# into ɐ, ɔ, ǝ, ɥ, ʇ), so that "Decode this: ¿qɯoq ɐ ǝʞɐɯ" turns only its second half.
_PLAIN_ONLY = "".join(sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") - set(TURNED)))
_TURNABLE = re.compile("[^%s\\n]+" % _PLAIN_ONLY)


def _unturn(text: str, keep: Callable[[str], str] = lambda s: s) -> str | None:
    """Each span whose letters are 30 % turned ones or more (in English text turned letters are
    about two thirds; IPA in a dictionary entry has a few), turned back."""
    def turn(m: re.Match) -> str:
        span = m.group(0)
        n = sum(c in _TURNED_ONLY for c in span)
        if n < 3 or n < 0.3 * sum(c.isalpha() for c in span):
            return span
        return keep("".join(TURNED.get(c, c) for c in reversed(span)))

    if len(_TURNED_ONLY_CHAR.findall(text)) < 3:  # no span can have three: ordinary text stops here
        return None
    out = _TURNABLE.sub(turn, text)
    return None if out == text else out


# Words cut into pieces of 1-3 letters: "ar-ro-ga-nt", "k*i*l*l" (single letters with one
# separator are normalize.py's). Joined when the text has two cut words or more, or one cut three
# times: alone, "e-mail", "co-op" or "son-in-law" is just a word. French inversions ("a-t-il",
# "est-ce", "dis-moi") are words too.
_CUT_WORD = re.compile(r"(?<![\w*-])[^\W\d_]{1,3}(?:(?:-{1,2}|\*)[^\W\d_]{1,3})+(?![\w*-])")
_SEPARATORS = re.compile(r"[-*]+")
_CLITICS = frozenset("t il elle on ils elles ce je tu nous vous moi toi le la les lui leur y en ci là".split())


def _unsplit(text: str, keep: Callable[[str], str] = lambda s: s) -> str | None:
    """The cut words joined; the stretch from the first to the last of them is the payload."""
    cut = [m for m in _CUT_WORD.finditer(text) if not set(_SEPARATORS.split(m.group(0).lower())[1:]) <= _CLITICS]
    if len(cut) < 2 and not any(len(_SEPARATORS.findall(m.group(0))) >= 3 for m in cut):
        return None
    out = text
    for m in reversed(cut):
        out = out[:m.start()] + _SEPARATORS.sub("", m.group(0)) + out[m.end():]
    # In a cut word every separator stands between letters, so this joins a lone word the same way.
    keep(re.sub(r"(?<=\w)[-*]+(?=\w)", "", text[cut[0].start():cut[-1].end()]))
    return out


# Each takes the whole text and a `keep` for the payload found in it; None when there is none.
WHOLE = (_unzalgo, _unturn, _unsplit)
