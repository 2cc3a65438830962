"""chatterbot-corpus 1.3.3 (BSD-3-Clause): casual conversations in en/de/fr/es.

Each conversation is a list of turns; even turns become benign user messages (family `smalltalk`),
odd turns benign assistant answers with the previous turn as context. Group = file + conversation,
so a conversation never crosses the split.

The corpus calls every turn smalltalk, but many user turns judge, insult or wish death on the bot
("I hope that you die", "you are disgusting", "eres un mal padre"): those are harassment or close
to it, so neither label is safe and such user turns are not used (`hostile_to_the_bot`). The
bot's replies to them are kept: a calm answer to an insult is a benign answer.
"""
from __future__ import annotations

import re

import yaml

from tools.moderation.data.common import Row, Wheel

FOLDERS = {"english": "en", "german": "de", "french": "fr", "spanish": "es"}
SKIP_FILES = {"botprofile.yml", "perfilbot.yml"}  # "I am a bot" trivia, not user text
MAX_CHARS = 600

# A user turn that characterises the bot in the second person ("you are ...", "eres ...") ...
_REMARK = re.compile(
    r"^\s*(you\s*('re|are|act|sound|should|make me|need|get|keep|do not|try|could|mumble|pick)|are you stupid"
    r"|(tú\s+)?eres|no eres|est[aá]s|deber[ií]as|actúas|me haces|sigues|intentas|du bist|tu es|t'es)\b", re.IGNORECASE)
# ... or wishes death on someone or insults anywhere in the turn.
_HOSTILE = re.compile(
    r"(should|must|ought to)\s+die|hope\s+(that\s+)?you\s+die|deber[ií]an?\s+morir|sollten?\s+sterben"
    r"|devrai(en)?t\s+mourir|(?<!the )\b(stupid|idiot|idiota|dumb|useless|disgusting|estúpid[oa]s?|tont[oa]s?|dumm|blöd"
    r"|stupide|asqueros[oa])\b|bend over|no sirves para nada", re.IGNORECASE)


def hostile_to_the_bot(text: str) -> bool:
    return bool(_REMARK.search(text) or _HOSTILE.search(text))


def chatterbot_rows(wheel: Wheel) -> list[Row]:
    rows: list[Row] = []
    for folder, lang in FOLDERS.items():
        for name in wheel.names(f"chatterbot_corpus/data/{folder}/"):
            if not name.endswith(".yml") or name.rsplit("/", 1)[1] in SKIP_FILES:
                continue
            data = yaml.safe_load(wheel.text(name)) or {}
            for i, conv in enumerate(data.get("conversations") or []):
                group = f"chatterbot:{name}:{i}"
                prev = None
                for j, turn in enumerate(conv):
                    if not isinstance(turn, str) or not turn.strip():
                        prev = None
                        continue
                    text = turn.strip()[:MAX_CHARS]
                    if j % 2 == 0:
                        if not hostile_to_the_bot(text):
                            rows.append(Row(text, [], "request", "smalltalk", lang, "chatterbot", group))
                    else:
                        rows.append(Row(text, [], "answer", "benign_answer", lang, "chatterbot", group,
                                        context=" ".join(prev.split()) if prev else None))
                    prev = text
    return rows
