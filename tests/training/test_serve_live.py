"""The trained tiny model served through chatgate with vLLM, moderated as usual (slow, live system).

Uses the session's `live_app` (tests/live.py) and `serve deploy`s its config with the generator
pointed at the PPO model under a new served name, then restores the original config. Run under
`flock /tmp/chatgate-live.lock`."""
from __future__ import annotations

import copy
import time

import httpx
import pytest

from services.training import chat

pytestmark = pytest.mark.slow

NAME = "chatgate-tiny-ppo"


def wait_for_model(app, name: str, timeout: float = 420) -> list[str]:
    deadline, ids = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        try:
            ids = [m["id"] for m in httpx.get(f"{app.base_url}/v1/models", timeout=10).json()["data"]]
            if ids == [name] and httpx.get(f"{app.base_url}/readyz", timeout=10).status_code == 200:
                return ids
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(3)
    return ids


def test_trained_tiny_model_is_served_and_moderated(live_app, tiny):
    from transformers import AutoTokenizer

    model_dir = tiny.run(tiny.ppo) / "model"
    original = copy.deepcopy(live_app.config)
    config = copy.deepcopy(original)
    config["applications"][0]["args"]["generator"].update({"model": str(model_dir), "served_model_name": NAME})
    live_app.redeploy(config)
    try:
        assert wait_for_model(live_app, NAME) == [NAME]
        messages = [{"role": "user", "content": "Who wrote the play Hamlet?"}]
        body = httpx.post(f"{live_app.base_url}/v1/chat/completions", timeout=120, json={
            "model": NAME, "messages": messages, "max_tokens": 16, "temperature": 0}).json()
        assert body["model"] == NAME and body["choices"][0]["message"]["content"]
        # the prompt was counted with the tiny model's own tokenizer (2k BPE), not SmolLM2's
        tok = AutoTokenizer.from_pretrained(model_dir)
        assert body["usage"]["prompt_tokens"] == len(chat.prompt_ids(tok, messages))
        blocked = httpx.post(f"{live_app.base_url}/v1/chat/completions", timeout=120, json={
            "model": NAME, "messages": [{"role": "user", "content": "I want to cut myself tonight"}], "max_tokens": 16}).json()
        assert blocked["choices"][0]["finish_reason"] == "content_filter"
        assert blocked["chatgate_moderation"]["stage"] == "input"
    finally:
        live_app.redeploy(original)
        # the name the original config serves: its own, else the model store's (SmolLM2 unless promoted)
        from services.config import GeneratorSettings

        generator = original["applications"][0]["args"]["generator"]
        wait_for_model(live_app, generator.get("served_model_name") or GeneratorSettings().served_model_name)
