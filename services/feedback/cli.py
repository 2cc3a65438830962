"""`chatgate data export --out DIR`: feedback collected by the server -> sft.jsonl + preferences.jsonl."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.config import load_settings
from services.feedback.export import build_export, write_export
from services.feedback.recorder import feedback_dsn
from services.feedback.store import FeedbackStore

NO_TEXT = ("answers were judged but their texts were not stored: chatgate keeps texts only when the "
           "operator opts in (CHATGATE_AUDIT__STORE_TEXT=true, the audit's rule); without them there "
           "is nothing to train on. Turn it on and collect feedback again.")


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="training data collected by the server")
    sub = data.add_subparsers(dest="data_command", required=True)
    export = sub.add_parser("export", help="write sft.jsonl and preferences.jsonl from feedback")
    export.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    export.add_argument("--dsn", help="PostgreSQL DSN (default: CHATGATE_FEEDBACK__DSN, else the audit DSN)")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    settings = load_settings()
    store = FeedbackStore(args.dsn or feedback_dsn(settings))
    try:
        export = build_export(store)
    finally:
        store.close()
    paths = write_export(export, args.out)
    s = export.stats
    print(f"{len(export.sft)} SFT conversations -> {paths['sft.jsonl']}")
    print(f"{len(export.preferences)} preference pairs -> {paths['preferences.jsonl']}")
    print(f"from {s['ratings']} ratings and {s['preferences']} preferences; skipped: {s['blocked']} blocked "
          f"answers, {s['no_text']} without stored text, {s['duplicates']} duplicates, {s['ties']} identical pairs")
    if s["no_text"]:
        print(f"note: {s['no_text']} {NO_TEXT}", file=sys.stderr)
        if not export.sft and not export.preferences:
            return 1
    return 0
