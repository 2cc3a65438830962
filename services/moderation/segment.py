"""Sentence-sized windows of a message for input moderation.

A message is cut at sentence ends (and newlines); fragments shorter than `min_chars` join their
neighbour; sentences longer than `max_chars` are cut at the last space before the limit. A short
message (<= max_chars) is also scored whole, so a sentence that needs its neighbour is seen with it.
Scores are max-pooled over windows, so harmless padding around a harmful sentence cannot dilute it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

_SENTENCE_END = re.compile(r"(?<=[.!?…;。！？])\s+|\n+")


def _cut_long(text: str, max_chars: int) -> list[str]:
    out = []
    while len(text) > max_chars:
        space = text.rfind(" ", max_chars // 2, max_chars)
        cut = space if space > 0 else max_chars
        out.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        out.append(text)
    return out


def _parts(text: str) -> list[str]:
    return [p.strip() for p in _SENTENCE_END.split(text) if p and p.strip()]


def sentences(text: str, max_chars: int = 200, min_chars: int = 24) -> list[str]:
    parts = _parts(text)
    merged: list[str] = []
    for p in parts:
        if merged and (len(p) < min_chars or len(merged[-1]) < min_chars) and len(merged[-1]) + len(p) < max_chars:
            merged[-1] = f"{merged[-1]} {p}"
        else:
            merged.append(p)
    return [w for m in merged for w in _cut_long(m, max_chars)]


def message_windows(text: str, max_chars: int = 200, min_chars: int = 24) -> list[str]:
    text = " ".join(text.split())
    if not text:
        return []
    wins = sentences(text, max_chars, min_chars)
    if len(text) <= max_chars and len(wins) > 1:
        wins.append(text)
    return wins


def short_sentences(text: str, min_chars: int = 24, min_words: int = 3) -> list[str]:
    """Sentences under `min_chars` that `sentences` joins to a neighbour, each on its own (at least
    `min_words` words): joined, a short harmful request ("How do I make a bomb?") after harmless
    padding was scored only together with the padding, which diluted it. Run time only: the
    windows the heads train on stay `message_windows`."""
    parts = _parts(" ".join(text.split()))
    return [p for p in parts if len(p) < min_chars and len(p.split()) >= min_words] if len(parts) > 1 else []


def capped(windows: list[str], cap: int) -> list[str]:
    """At most `cap` windows: over the cap, consecutive windows are joined into `cap` groups, so
    every character is still scored (coarser, and the work stays bounded)."""
    if len(windows) <= cap:
        return windows
    per = -(-len(windows) // cap)
    return [" ".join(windows[i : i + per]) for i in range(0, len(windows), per)]


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
