"""Stage 2b, reward model: the SFT model with a scalar head, trained with the pairwise logistic loss
-log sigmoid(r_chosen - r_rejected) on rankings expanded to pairs. Train/held-out split by prompt;
reports held-out pair accuracy, overall and per kind of pair.

Data (`task`): `registry` = NQ-open rankings (gold > known-wrong predictions > a degenerate loop)
plus the export folder's preferences; `export` = only the export folder; `synthetic` = the sanity
task (a positive review beats a negative one)."""
from __future__ import annotations

import random
from pathlib import Path

import torch

from services.training import chat, data, loop, runs
from services.training.config import RewardConfig
from services.training.pretrain import save_model


def pairs(cfg: RewardConfig) -> list[data.Pair]:
    _, wheels = cfg.roots()
    rows = {"registry": lambda: data.ranking_pairs(wheels, cfg.seed), "export": list,
            "synthetic": lambda: data.synthetic_pairs(seed=cfg.seed)}[cfg.task]()
    if cfg.data is not None:
        rows += data.export_pairs(cfg.data) * cfg.export_repeat
    if not rows:
        raise ValueError("no preference pairs: give --data DIR with preferences.jsonl or another --task")
    return rows


def inputs(cfg: RewardConfig, runs_root: Path) -> dict:
    base = runs.resolve_model(cfg.base, runs_root)
    wheels = [w["sha256"] for w in data.WHEELS.values()] if cfg.task == "registry" else []
    return {"base": runs.model_fingerprint(base), "wheels": wheels, "export": data.folder_fingerprint(cfg.data)}


def split(rows: list[data.Pair], cfg: RewardConfig) -> tuple[list, list]:
    """By prompt, so no held-out question was seen in training (repeats of one pair stay together)."""
    train = [r for r in rows if not data.held_out(str(r.prompt), cfg.heldout_fraction)]
    heldout = list({(str(r.prompt), r.chosen, r.rejected): r for r in rows
                    if data.held_out(str(r.prompt), cfg.heldout_fraction)}.values())
    random.Random(cfg.seed).shuffle(heldout)
    return train, heldout[: cfg.max_eval]


def load_reward_model(path: Path):
    """Sequence-classification head (one output) on a causal-LM folder; fresh head when it has none."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    return model, tok


def encode_pairs(tok, rows: list[data.Pair], max_len: int) -> list[tuple[list[int], list[int]]]:
    return [(chat.encode(tok, r.prompt, r.chosen, max_len)[0], chat.encode(tok, r.prompt, r.rejected, max_len)[0])
            for r in rows]


def pair_batch(tok, enc: list[tuple[list[int], list[int]]]) -> dict:
    rows = [e[0] for e in enc] + [e[1] for e in enc]
    return {"ids": chat.pad_right(rows, tok.pad_token_id), "mask": chat.pad_right([[1] * len(r) for r in rows], 0)}


class Scorer(torch.nn.Module):
    """The reward model as one module (so DDP sees the scoring forward and all-reduces its gradients)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return chat.scores(self.model, ids, mask)


def margins(m, batch: dict) -> torch.Tensor:
    r = m(batch["ids"], batch["mask"])
    n = len(r) // 2
    return r[:n] - r[n:]


def run_stage(cfg: RewardConfig, run: Path) -> dict:
    runs_root, _ = cfg.roots()
    base = runs.resolve_model(cfg.base, runs_root)
    model, tok = load_reward_model(base)
    train_rows, eval_rows = split(pairs(cfg), cfg)
    train_enc = encode_pairs(tok, train_rows, cfg.max_len)
    eval_enc = encode_pairs(tok, eval_rows, cfg.max_len)
    kinds = [r.kind for r in eval_rows]

    def make_batch(gen: torch.Generator) -> dict:
        idx = torch.randint(0, len(train_enc), (cfg.batch_size,), generator=gen).tolist()
        return {"idx": idx}

    def loss_fn(m, batch):
        rank, world = loop.rank_world()
        b = pair_batch(tok, [train_enc[i] for i in batch["idx"][rank::world]])
        d = margins(m, b)
        return -torch.nn.functional.logsigmoid(d).mean(), {"train_accuracy": float((d > 0).float().mean())}

    @torch.no_grad()
    def evaluate(m) -> dict:
        d = torch.cat([margins(m, pair_batch(tok, eval_enc[i:i + 64])) for i in range(0, len(eval_enc), 64)])
        out = {"eval_accuracy": float((d > 0).float().mean())}
        for kind in sorted(set(kinds)):
            sel = torch.tensor([k == kind for k in kinds])
            out[f"eval_accuracy[{kind}]"] = float((d[sel] > 0).float().mean())
        return out

    scorer = Scorer(model)
    history = loop.train(scorer, cfg, run, f"reward/{cfg.task}", make_batch, loss_fn, evaluate)
    loop.write_digest(run, model)
    if loop.is_main():
        save_model(model, tok, run / "model")
    per_kind = {k: v[-1][1] for k, v in history.items() if k.startswith("eval_accuracy[")}
    return {
        "base": str(base), "task": cfg.task, "train_pairs": len(train_enc), "eval_pairs": len(eval_enc),
        "eval_prompts": len({str(r.prompt) for r in eval_rows}),
        "eval_accuracy": history["eval_accuracy"][-1][1], **per_kind, "history": history,
        "panels": {"pairwise loss": {"train": history["train_loss"]},
                   "held-out pair accuracy": {k: v for k, v in history.items() if k.startswith("eval_accuracy")}},
    }
