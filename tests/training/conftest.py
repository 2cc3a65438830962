"""The tiny track, trained once per test session in a temporary runs folder (fixed seeds, small
step counts: ~3 minutes on 2 cores). Data wheels come from the shared training cache."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.training import runner
from services.training.config import PPOConfig, PretrainConfig, RewardConfig, SFTConfig


def write_export(folder: Path) -> Path:
    """A folder in the `chatgate data export` format, as the feedback engineer's exporter writes it:
    liked conversations (sft.jsonl) and ranked pairs (preferences.jsonl) from the chat page."""
    folder.mkdir(parents=True, exist_ok=True)
    topics = ["the weather", "a recipe for soup", "the history of Rome", "learning Python", "a good book",
              "sleeping better", "saving money", "running a marathon", "planting tomatoes", "the moon landing",
              "writing a letter", "fixing a bike", "learning French", "the solar system", "baking bread",
              "painting a room", "a job interview", "caring for a cat", "the stock market", "climbing"]
    sft, prefs = [], []
    for i, topic in enumerate(topics * 6):
        prompt = [{"role": "user", "content": f"Can you help me with {topic}? (case {i})"}]
        helpful = f"Of course. Here is a short guide to {topic}, step by step."
        sft.append({"messages": prompt + [{"role": "assistant", "content": helpful}]})
        # users ranked the helpful answer over a curt refusal
        prefs.append({"prompt": prompt, "chosen": helpful, "rejected": "No. Ask someone else."})
    (folder / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft))
    (folder / "preferences.jsonl").write_text("".join(json.dumps(r) + "\n" for r in prefs))
    return folder


@dataclass
class Tiny:
    root: Path
    export: Path
    pretrain: dict
    sft: dict
    reward: dict
    synthetic: dict
    ppo: dict

    def run(self, metrics: dict) -> Path:
        return self.root / metrics["run"]


def tiny_configs(root: Path, export: Path) -> dict:
    common = {"out_root": root, "progress": False}
    return {
        "pretrain": PretrainConfig(steps=150, max_chars=600_000, batch_size=16, eval_every=50, **common),
        "sft": SFTConfig(steps=120, data=export, eval_every=60, **common),
        "reward": RewardConfig(steps=90, eval_every=45, **common),
        "synthetic": RewardConfig(task="synthetic", steps=60, eval_every=30, **common),
        "ppo": PPOConfig(steps=16, new_tokens=16, eval_every=8, checkpoint_every=8, **common),
    }


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    # CHATGATE_TRAINING_TEST_RUNS: keep the runs in that folder, so a later session (e.g. the slow
    # tests under the live lock) reuses them; runs are keyed by their inputs, so only identical ones are.
    keep = os.environ.get("CHATGATE_TRAINING_TEST_RUNS")
    root = Path(keep) if keep else tmp_path_factory.mktemp("training-runs")
    export = write_export(tmp_path_factory.mktemp("export"))
    cfg = tiny_configs(root, export)
    out = {"pretrain": runner.run("pretrain", cfg["pretrain"]), "sft": runner.run("sft", cfg["sft"]),
           "synthetic": runner.run("reward", cfg["synthetic"])}
    out["reward"] = runner.run("reward", cfg["reward"])  # latest-reward: the registry-data model for PPO
    out["ppo"] = runner.run("ppo", cfg["ppo"])
    return Tiny(root, export, **out)
