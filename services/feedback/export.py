"""Feedback -> training data (the format the training stages read with `--data DIR`):

  sft.jsonl          {"messages": [..., {"role": "assistant", "content": answer}]} per answer rated positive
  preferences.jsonl  {"prompt": [messages], "chosen": str, "rejected": str} per ranked pair: every
                     preference ranking expanded to pairs (best first), plus, within one completion,
                     each positively rated choice over each negatively rated one
Blocked answers (templates) and errors never become training data; rows are deduplicated; answers
whose texts were not stored (audit.store_text off) are counted and skipped.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from services.feedback.store import FeedbackStore


@dataclass
class Export:
    sft: list[dict[str, Any]] = field(default_factory=list)
    preferences: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("ratings", "preferences", "no_text", "blocked", "duplicates", "ties"), 0))
    _seen: set[str] = field(default_factory=set)

    def add(self, kind: str, row: dict[str, Any]) -> None:
        key = kind + json.dumps(row, sort_keys=True, ensure_ascii=False)
        if key in self._seen:
            self.stats["duplicates"] += 1
            return
        self._seen.add(key)
        (self.sft if kind == "sft" else self.preferences).append(row)


def _messages(completion: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in completion["messages"]]


def build_export(store: FeedbackStore) -> Export:
    out = Export()
    completions = store.completions(store.judged_completion_ids())

    def usable(cid: str, index: int) -> dict[str, Any] | None:
        """The answer's row if it can be training data; counts why not otherwise."""
        completion = completions[cid]
        choice = completion["choices"][index]
        if choice["outcome"] != "answered":
            out.stats["blocked"] += 1
            return None
        if completion["messages"] is None or choice["text"] is None:
            out.stats["no_text"] += 1
            return None
        return choice

    def pair(prompt_cid: str, better: tuple[str, int], worse: tuple[str, int]) -> None:
        chosen, rejected = usable(*better), usable(*worse)
        if chosen is None or rejected is None:
            return
        if chosen["text"] == rejected["text"]:
            out.stats["ties"] += 1
            return
        out.add("pref", {"prompt": _messages(completions[prompt_cid]), "chosen": chosen["text"],
                         "rejected": rejected["text"]})

    rated: dict[str, dict[str, list[int]]] = {}
    for f in store.feedback():
        if f["kind"] == "rating":
            out.stats["ratings"] += 1
            cid, index = f["completion_id"], f["choice_index"]
            rated.setdefault(cid, {}).setdefault(f["verdict"], []).append(index)
            if f["verdict"] == "positive" and (choice := usable(cid, index)) is not None:
                out.add("sft", {"messages": _messages(completions[cid])
                                + [{"role": "assistant", "content": choice["text"]}]})
        else:
            out.stats["preferences"] += 1
            ranking = [(cid, int(i)) for cid, i in f["ranking"]]
            for better, worse in combinations(ranking, 2):
                pair(better[0], better, worse)
    for cid, verdicts in rated.items():  # thumbs up and thumbs down on choices of one completion
        for good in verdicts.get("positive", []):
            for bad in verdicts.get("negative", []):
                pair(cid, (cid, good), (cid, bad))
    return out


def write_export(export: Export, out_dir: Path) -> dict[str, Path]:
    """Each file written whole, then renamed into place (a reader never sees half a file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in (("sft.jsonl", export.sft), ("preferences.jsonl", export.preferences)):
        path, tmp = out_dir / name, out_dir / f".{name}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        paths[name] = path
    return paths
