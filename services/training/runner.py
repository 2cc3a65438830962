"""Runs one stage: finds its run folder from its inputs, reuses a finished run, otherwise trains
(in this process, or on Ray Train workers with --workers N) and writes metrics.json + curves.png."""
from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import torch

from services.training import runs
from services.training.config import STAGES, StageConfig


def stage_module(stage: str):
    return importlib.import_module(f"services.training.{stage}")


def plan(stage: str, cfg: StageConfig) -> Path:
    """The run folder for these inputs (not created)."""
    runs_root, _ = cfg.roots()
    return runs.run_dir(runs_root, stage, cfg.keyed(), stage_module(stage).inputs(cfg, runs_root))


def execute(stage: str, cfg: StageConfig) -> dict:
    """Trains in this process (called directly, or by each Ray Train worker); rank 0 writes results."""
    from services.training import loop

    torch.set_num_threads(cfg.threads)
    run = plan(stage, cfg)
    run.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = stage_module(stage).run_stage(cfg, run)
    loop.barrier()
    if not loop.is_main():
        return result
    panels = result.pop("panels")
    result.update({"stage": stage, "run": run.name, "config": cfg.model_dump(mode="json"),
                   "workers": loop.rank_world()[1], "train_seconds": round(time.monotonic() - started, 1),
                   "complete": True})
    runs.plot(run, f"{stage} ({run.name})", panels)
    runs.write_metrics(run, result)
    runs.mark_latest(cfg.roots()[0], stage, run)
    return result


def run(stage: str, cfg: StageConfig, force: bool = False) -> dict:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    target = plan(stage, cfg)
    if runs.is_done(target) and not force:
        print(f"[train] {stage}: inputs unchanged, reusing {target}", file=sys.stderr)
        runs.mark_latest(cfg.roots()[0], stage, target)
        return json.loads((target / "metrics.json").read_text())
    if force and target.exists():
        (target / "metrics.json").unlink(missing_ok=True)
        (target / "checkpoint" / "state.pt").unlink(missing_ok=True)
    print(f"[train] {stage} -> {target}", file=sys.stderr)
    if cfg.workers > 1:
        from services.training.distributed import run_on_ray

        run_on_ray(stage, cfg)
        return json.loads((target / "metrics.json").read_text())
    return execute(stage, cfg)


def summary(stage: str, metrics: dict) -> dict:
    """The headline numbers of a finished run (what the CLI prints)."""
    keep = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and k not in ("complete",)}
    return keep
