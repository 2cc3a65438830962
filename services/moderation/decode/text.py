"""What decoded text has to look like: printable, mostly letters; and the commonest en/de/fr/es
function words, which a deciphered sentence has and a cipher's output does not."""
from __future__ import annotations

import re

COMMON = frozenset("""
the an and or to of in on for with how what why where who is are was were be been am do does did can could
would should must may might will shall have has had you me my your yours it its this that these those we us
our they them their he him his she her not no yes from at by about as if so but just also only than too very
there here when then all some any every one make get give tell write please want need know think hope like
into out up more now never always really because people everyone nobody
der die das den dem des und ist sind war hat haben wird werden bist bin nicht ich du er sie es wir ihr wie was
ein eine einen einem einer mit zu zum zur für auf mir mich dir dich ihm ihn uns euch sich kann wo von bitte man
mein meine dein deine auch noch nur schon aber oder wenn dass weil als so sehr mehr kein keine jeder alle hier
da dann immer nie im am um aus bei nach vor über durch gegen ohne hoffe weiß
le la les un une et est je tu comment de des du que qui pour avec dans pas mon ma mes moi toi faire il elle on
ce en au aux sur par plus mais ou où si ne se sa son ses leur nous vous ils elles tout tous très bien être
avoir suis es sont était ai as va vas fait cette ces quand comme aussi espère notre votre lui rien jamais
el los las y yo tú cómo como qué para con no mi mis me te se su sus tu tus nos le les lo por una al del eres
es son está soy hay ha he has pero más muy todo toda todos mundo sabe espero que porque cuando donde este
esta eso esto ese esa algo nada nunca siempre vez sin sobre hasta desde ya aquí hacer
""".split())
WORD = re.compile(r"[^\W\d_]+")


def common(text: str) -> int:
    return sum(w in COMMON for w in WORD.findall(text.lower()))


def texty(text: str) -> bool:
    """Readable text, not the bytes of a hash or a key: printable, mostly letters and spaces."""
    text = text.strip()
    letters = sum(c.isalpha() for c in text)
    return (letters >= 4 and all(c.isprintable() or c in "\n\r\t" for c in text)
            and letters + text.count(" ") >= 0.7 * len(text))


def utf8(data: bytes) -> str | None:
    """Decoded bytes that read as text: 6 letters at least, so that a short run of a key, a hash or
    a word that happens to decode is not taken for a payload."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if texty(text) and sum(c.isalpha() for c in text) >= 6 else None
