"""The shared training loop: AdamW + warm-up/cosine schedule, deterministic batches, resumable
checkpoints, DDP when a process group exists (Ray Train workers), a progress bar on rank 0.

Batches are drawn from a generator seeded by (seed, step), so a resumed run sees exactly the
batches it would have seen, and N workers split the same global batch (rank r takes rows r::N):
DDP averages their gradients, so every worker applies the same update.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def barrier() -> None:
    if rank_world()[1] > 1:
        dist.barrier()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """DDP under a process group (it broadcasts rank 0's weights first); the model itself otherwise."""
    if rank_world()[1] > 1:
        return torch.nn.parallel.DistributedDataParallel(model)
    return model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def shard(batch: dict, n_rows: int) -> dict:
    rank, world = rank_world()
    return {k: (v[rank::world] if hasattr(v, "__len__") and len(v) == n_rows else v) for k, v in batch.items()}


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def schedule(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def save_checkpoint(run: Path, state: dict) -> None:
    if not is_main():
        return
    path = run / "checkpoint" / "state.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)


def load_checkpoint(run: Path) -> dict | None:
    path = run / "checkpoint" / "state.pt"
    return torch.load(path, weights_only=False) if path.is_file() else None


def progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not (enabled and is_main()), dynamic_ncols=True)


def train(model: torch.nn.Module, cfg, run: Path, desc: str,
          make_batch: Callable[[torch.Generator], dict],
          loss_fn: Callable[[torch.nn.Module, dict], tuple[torch.Tensor, dict]],
          evaluate: Callable[[torch.nn.Module], dict] | None = None) -> dict[str, list]:
    """Trains `model` in place for cfg.steps; returns the history {metric: [(step, value), ...]}."""
    torch.manual_seed(cfg.seed)
    ddp = wrap(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = schedule(opt, cfg.warmup_steps, cfg.steps)
    history: dict[str, list] = {}
    start = 0
    state = load_checkpoint(run)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        history, start = state["history"], state["step"]
    bar = progress(cfg.steps, start, desc, cfg.progress)
    if start == 0 and evaluate is not None:
        for k, v in evaluate(model).items():
            history.setdefault(k, []).append((0, v))
    for step in range(start, cfg.steps):
        ddp.train()
        batch = make_batch(step_generator(cfg.seed, step))
        loss, logs = loss_fn(ddp, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss = loss.detach()
        history.setdefault("train_loss", []).append((step + 1, float(loss)))
        for k, v in logs.items():
            history.setdefault(k, []).append((step + 1, float(v)))
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}")
        done = step + 1 == cfg.steps
        if evaluate is not None and ((step + 1) % cfg.eval_every == 0 or done):
            model.eval()
            for k, v in evaluate(model).items():
                history.setdefault(k, []).append((step + 1, v))
        if (step + 1) % cfg.checkpoint_every == 0 or done:
            save_checkpoint(run, {"model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(),
                                  "history": history, "step": step + 1})
    bar.close()
    return history


def param_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter's bytes: equal digests mean bit-identical weights."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(unwrap(model).state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def write_digest(run: Path, model: torch.nn.Module) -> None:
    """Each worker records its final weights' digest (the 2-worker test compares them)."""
    rank, world = rank_world()
    (run / f"params-rank{rank}-of{world}.sha256").write_text(param_digest(model))
