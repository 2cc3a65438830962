"""The `chatgate` entry point lists only modules that exist, and a broken one fails loudly."""
from __future__ import annotations

import importlib

import pytest

from services import cli


def test_every_listed_command_module_imports_and_registers():
    for name in cli._COMMANDS:
        assert hasattr(importlib.import_module(name), "register"), name
    with pytest.raises(SystemExit) as e:
        cli.main(["audit", "replay", "--help"])
    assert e.value.code == 0


def test_a_broken_command_module_is_an_error_not_a_missing_command(monkeypatch):
    monkeypatch.setattr(cli, "_COMMANDS", (*cli._COMMANDS, "services.audit.no_such_cli"))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["audit", "list", "--help"])
