"""Which model chatgate serves: `$CHATGATE_CACHE/models/served` (a symlink to a trained model folder)
and `models/served.json` (its served name + the promotion history). GeneratorSettings reads both
as its defaults, so `make run` / `serve deploy` serve the promoted model; with neither, SmolLM2."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from services.config import TrainingSettings, cache_dir

DEFAULT_NAME = "smollm2-135m-instruct"


def models_dir() -> Path:
    return cache_dir() / "models"


def _state_path() -> Path:
    return models_dir() / "served.json"


def state() -> dict:
    try:
        return json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return {"current": None, "history": []}


def _write(st: dict) -> None:
    models_dir().mkdir(parents=True, exist_ok=True)
    link, tmp = models_dir() / "served", models_dir() / f".served.{os.getpid()}"
    current = st.get("current")
    if current:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(current["path"])
        os.replace(tmp, link)
    elif link.is_symlink():
        link.unlink()
    tmp_json = _state_path().with_suffix(".tmp")
    tmp_json.write_text(json.dumps(st, indent=2))
    os.replace(tmp_json, _state_path())


def resolve_run(ref: str) -> tuple[str, Path]:
    """A run name (in the runs folder), `latest-<stage>`, a run folder or a model folder -> (name, model folder)."""
    runs = TrainingSettings().runs_dir
    path = Path(ref).expanduser()
    if not path.exists():
        path = runs / ref
    path = path.resolve()
    model = path / "model" if (path / "model" / "config.json").is_file() else path
    if not (model / "config.json").is_file() or not any(model.glob("*.safetensors")):
        raise FileNotFoundError(f"{ref}: no model folder (config.json + weights) at {model}")
    if (model / "config.json").is_file() and "ForSequenceClassification" in (model / "config.json").read_text():
        raise ValueError(f"{ref} is a reward model, not a chat model")
    name = path.name if model != path else model.name
    return f"chatgate-{name}", model


def promote(ref: str) -> dict:
    name, model = resolve_run(ref)
    st = state()
    if st.get("current"):
        st["history"].append(st["current"])
    st["current"] = {"name": name, "path": str(model), "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write(st)
    return st["current"]


def rollback() -> dict | None:
    """Back to the previously promoted model; with none left, back to the set-up default (SmolLM2)."""
    st = state()
    if not st.get("current"):
        raise RuntimeError("nothing promoted: the default model is already served")
    st["current"] = st["history"].pop() if st["history"] else None
    _write(st)
    return st["current"]


def current() -> dict:
    st = state()
    return st["current"] or {"name": DEFAULT_NAME, "path": str(models_dir() / DEFAULT_NAME), "default": True}
