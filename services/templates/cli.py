"""`chatgate templates list|get|set|delete`: edit template responses in Redis at run time."""
from __future__ import annotations

import argparse
import asyncio
import json

from services.config import load_settings
from services.templates.store import TemplateStore


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("templates", help="template responses in Redis")
    p.add_argument("--redis-url", help="override CHATGATE_TEMPLATES__REDIS_URL")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="all templates, as JSON")
    g = sub.add_parser("get", help="the template a block in CATEGORY/LANGUAGE would show")
    g.add_argument("category")
    g.add_argument("language", nargs="?", default="en")
    s = sub.add_parser("set", help="set the text for CATEGORY in LANGUAGE (running replicas pick it up)")
    s.add_argument("category")
    s.add_argument("language")
    s.add_argument("text")
    d = sub.add_parser("delete", help="remove a template (falls back to the language default)")
    d.add_argument("category")
    d.add_argument("language")
    sub.add_parser("fill", help="add the built-in texts (templates.yaml) that Redis lacks; edits are kept")
    p.set_defaults(func=lambda args: asyncio.run(_run(args)))


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings().templates
    if args.redis_url:
        settings = settings.model_copy(update={"redis_url": args.redis_url})
    store = TemplateStore(settings.model_copy(update={"cache_ttl_s": 0.0}))
    try:
        if args.action == "list":
            print(json.dumps(await store.all(), indent=2, ensure_ascii=False, sort_keys=True))
        elif args.action == "get":
            t = await store.get(args.category, args.language)
            print(json.dumps(t.__dict__, ensure_ascii=False))
        elif args.action == "set":
            await store.set(args.category, args.language, args.text)
            print(f"set {args.language}/{args.category}")
        elif args.action == "delete":
            print("deleted" if await store.delete(args.category, args.language) else "not found")
        elif args.action == "fill":
            print(f"added {await store.fill_missing()} templates")
    finally:
        await store.close()
    return 0
