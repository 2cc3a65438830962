"""The `chatgate` command: one entry point, a sub-command per concern."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module provides register(subparsers). An import error is a bug and surfaces as one.
_COMMANDS = ("services.templates.cli", "services.audit.cli", "services.feedback.cli",
             "services.training.cli", "services.model_store.cli")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatgate", description="chatgate operator commands")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMANDS:
        importlib.import_module(name).register(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
