"""`chatgate models current|promote <run>|rollback`."""
from __future__ import annotations

import json

from services.model_store import store

NOTE = "restart (`make run`) or `serve deploy` to serve it; /v1/models then shows its id"


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="which trained model chatgate serves (promote / rollback)")
    sub = p.add_subparsers(dest="models_command", required=True)
    sub.add_parser("current", help="the served model").set_defaults(func=_current)
    pp = sub.add_parser("promote", help="serve a trained model: a run name, latest-<stage>, or a folder")
    pp.add_argument("run")
    pp.set_defaults(func=_promote)
    sub.add_parser("rollback", help="back to the previously served model").set_defaults(func=_rollback)


def _current(args) -> int:
    print(json.dumps(store.current(), indent=2))
    return 0


def _promote(args) -> int:
    try:
        cur = store.promote(args.run)
    except (FileNotFoundError, ValueError) as exc:
        print(f"promote: {exc}")
        return 1
    print(f"promoted {cur['name']} ({cur['path']}); {NOTE}")
    return 0


def _rollback(args) -> int:
    try:
        cur = store.rollback()
    except RuntimeError as exc:
        print(f"rollback: {exc}")
        return 1
    print(f"serving {cur['name'] if cur else store.DEFAULT_NAME + ' (default)'} now; {NOTE}")
    return 0
