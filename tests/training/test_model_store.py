"""`chatgate models promote/rollback`: the served symlink + served.json that GeneratorSettings reads."""
from __future__ import annotations

import pytest

from services.cli import main
from services.config import GeneratorSettings, load_settings
from services.model_store import store


@pytest.fixture
def cache(tmp_path, monkeypatch, tiny):
    monkeypatch.setenv("CHATGATE_CACHE", str(tmp_path))
    monkeypatch.setenv("CHATGATE_TRAINING__RUNS_DIR", str(tiny.root))
    return tmp_path


def test_promote_makes_the_trained_model_the_default_and_rollback_restores(cache, tiny, capsys):
    assert GeneratorSettings().served_model_name == "smollm2-135m-instruct"
    assert main(["models", "promote", tiny.sft["run"]]) == 0
    gen = load_settings().generator
    assert gen.served_model_name == f"chatgate-{tiny.sft['run']}"
    assert gen.model == str(cache / "models" / "served")
    assert (cache / "models" / "served").resolve() == (tiny.run(tiny.sft) / "model").resolve()
    assert (cache / "models" / "served" / "config.json").is_file()

    assert main(["models", "promote", str(tiny.run(tiny.ppo))]) == 0
    assert GeneratorSettings().served_model_name == f"chatgate-{tiny.ppo['run']}"
    assert main(["models", "rollback"]) == 0
    assert GeneratorSettings().served_model_name == f"chatgate-{tiny.sft['run']}"
    assert main(["models", "rollback"]) == 0
    gen = GeneratorSettings()
    assert (gen.served_model_name, gen.model) == ("smollm2-135m-instruct", str(cache / "models" / "smollm2-135m-instruct"))
    assert not (cache / "models" / "served").exists()
    assert main(["models", "rollback"]) == 1  # nothing left to roll back
    assert "nothing promoted" in capsys.readouterr().out


def test_promote_refuses_what_is_not_a_chat_model(cache, tiny):
    with pytest.raises(ValueError, match="reward model"):
        store.promote(tiny.reward["run"])
    with pytest.raises(FileNotFoundError):
        store.promote("no-such-run")
    assert store.current()["name"] == "smollm2-135m-instruct"


def test_explicit_settings_still_win_over_the_promoted_default(cache, tiny, monkeypatch):
    store.promote("latest-ppo")
    monkeypatch.setenv("CHATGATE_GENERATOR__SERVED_MODEL_NAME", "pinned")
    assert GeneratorSettings.model_validate({}).served_model_name.startswith("chatgate-ppo-")
    assert load_settings().generator.served_model_name == "pinned"
