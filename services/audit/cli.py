"""`chatgate audit ...`: list and prune moderation decisions; replay parked events."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any


def _fmt_row(r: dict[str, Any]) -> str:
    ts = r["ts"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    cats = ",".join(r.get("categories") or []) or "-"
    top = max((r.get("scores") or {}).items(), key=lambda kv: kv[1], default=None)
    score = f"{top[0]}={top[1]:.2f}" if top else "-"
    tpl = f"{r.get('template_category') or '-'}/{r.get('template_language') or '-'}"
    text = r.get("text")
    text = (text[:60] + "…" if len(text) > 60 else text).replace("\n", " ") if text else (r.get("text_sha256") or "-")[:23]
    verdict = "BLOCK" if r["flagged"] else "pass"
    return f"{ts}  {r['stage']:<6} {verdict:<5} {r.get('request_id') or '-':<40} {cats:<24} {score:<20} {tpl:<16} {r.get('model') or '-':<24} {text}"


def _list(args: argparse.Namespace) -> int:
    from services.audit.store import AuditStore
    from services.config import load_settings

    dsn = args.dsn or load_settings().audit.dsn
    flagged = True if args.blocked else (False if args.passed else None)
    since = datetime.now(timezone.utc) - timedelta(minutes=args.since_minutes) if args.since_minutes else None
    store = AuditStore(dsn)
    try:
        rows = store.recent(limit=args.limit, stage=args.stage, flagged=flagged, request_id=args.request_id,
                            since=since)
    except Exception as exc:
        print(f"audit store unavailable: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if args.json:
        for r in rows:
            print(json.dumps(r, default=str))
    else:
        print(f"{'time (UTC)':<19}  {'stage':<6} {'':<5} {'request id':<40} {'categories':<24} {'top score':<20} "
              f"{'template':<16} {'model':<24} text")
        for r in rows:
            print(_fmt_row(r))
    return 0


def _prune(args: argparse.Namespace) -> int:
    from services.audit.store import AuditStore
    from services.config import load_settings

    store = AuditStore(args.dsn or load_settings().audit.dsn)
    try:
        print(f"deleted {store.prune(args.older_than_days)} audit records")
    finally:
        store.close()
    return 0


def _replay(args: argparse.Namespace) -> int:
    """Write parked events (Redis dead-letter list, local spool) straight to PostgreSQL."""
    import redis

    from services.audit.events import AuditEvent
    from services.audit.parking import DeadLetters, Spool
    from services.audit.store import AuditStore
    from services.config import load_settings

    settings = load_settings()
    store = AuditStore(args.dsn or settings.audit.dsn)
    write = lambda e: store.insert(AuditEvent.model_validate(e).model_dump())  # noqa: E731
    dead = DeadLetters(redis.Redis.from_url(settings.queue.broker_url, socket_timeout=5), settings.audit.deadletter_key)
    spool = Spool(args.spool_dir or settings.audit.spool_dir)
    try:
        n_dead = 0
        while len(dead):
            n_dead += dead.drain(write, limit=500)
        n_spool = spool.drain(write)
    except Exception as exc:
        print(f"replay stopped: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"replayed {n_dead} dead-lettered and {n_spool} spooled audit events")
    return 0


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="moderation audit trail")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    ls = sub.add_parser("list", help="recent moderation decisions, newest first")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--stage", choices=["input", "output"])
    g = ls.add_mutually_exclusive_group()
    g.add_argument("--blocked", action="store_true", help="only decisions that blocked")
    g.add_argument("--passed", action="store_true", help="only sampled passes")
    ls.add_argument("--request-id")
    ls.add_argument("--since-minutes", type=float)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.add_argument("--dsn", help="override audit.dsn")
    ls.set_defaults(func=_list)
    pr = sub.add_parser("prune", help="delete records older than N days")
    pr.add_argument("--older-than-days", type=float, required=True)
    pr.add_argument("--dsn")
    pr.set_defaults(func=_prune)
    rp = sub.add_parser("replay", help="write parked events (dead-letter list, spool) to PostgreSQL")
    rp.add_argument("--dsn")
    rp.add_argument("--spool-dir", help="override audit.spool_dir")
    rp.set_defaults(func=_replay)


def main(argv: list[str] | None = None) -> int:
    """`python -m services.audit.cli list ...` (same as `chatgate audit list ...`)."""
    p = argparse.ArgumentParser(prog="chatgate")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["audit", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
