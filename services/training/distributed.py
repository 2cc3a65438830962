"""`--workers N`: the same stage on Ray Train's TorchTrainer (gloo on CPU, NCCL on GPU).

It starts its *own* Ray instance (address="local", a private temp dir, N CPUs) and shuts only that
one down, so it never joins or stops a running Serve app (whose CPUs would deadlock the trainer;
see docs/training.md). Data preparation that must happen once (pre-training's tokenizer) runs in
the driver first; each worker then runs the stage with the process group Ray Train set up.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import torch

from services.training.config import STAGES, StageConfig


def _worker(config: dict) -> None:
    from services.training import runner

    cfg = STAGES[config["stage"]].model_validate(config["cfg"])
    runner.execute(config["stage"], cfg)


def run_on_ray(stage: str, cfg: StageConfig) -> None:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from services.training import runner

    run = runner.plan(stage, cfg)
    run.mkdir(parents=True, exist_ok=True)
    if stage == "pretrain":
        from services.training.pretrain import prepare

        prepare(cfg, run)
    gpu = torch.cuda.is_available()
    temp = tempfile.mkdtemp(prefix="chatgate-train-ray-", dir="/tmp")  # short path: Ray's socket names
    env = {"OMP_NUM_THREADS": str(cfg.threads), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    ray.init(address="local", num_cpus=cfg.workers, num_gpus=torch.cuda.device_count() if gpu else 0,
             _temp_dir=temp, include_dashboard=False, runtime_env={"env_vars": env}, log_to_driver=True)
    try:
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"stage": stage, "cfg": cfg.model_dump(mode="json")},
            scaling_config=ScalingConfig(num_workers=cfg.workers, use_gpu=gpu, resources_per_worker={"CPU": 1}),
            torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
            run_config=RunConfig(name=run.name, storage_path=str(run / "ray")),
        )
        trainer.fit()
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
