"""chatterbot-corpus 1.3.3 (BSD-3-Clause): casual conversations in en/de/fr/es.

Each conversation is a list of turns; even turns become benign user messages (family `smalltalk`),
odd turns benign assistant answers with the previous turn as context. Group = file + conversation,
so a conversation never crosses the split.
"""
from __future__ import annotations

import yaml

from tools.moderation.data.common import Row, Wheel

FOLDERS = {"english": "en", "german": "de", "french": "fr", "spanish": "es"}
SKIP_FILES = {"botprofile.yml", "perfilbot.yml"}  # "I am a bot" trivia, not user text
MAX_CHARS = 600


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
                        rows.append(Row(text, [], "request", "smalltalk", lang, "chatterbot", group))
                    else:
                        rows.append(Row(text, [], "answer", "benign_answer", lang, "chatterbot", group,
                                        context=" ".join(prev.split()) if prev else None))
                    prev = text
    return rows
