"""Stage 2a, supervised fine-tuning: next-token loss on the answer tokens only (prompt masked), on
NQ-open / TruthfulQA answers, chatterbot conversations and the conversations users liked
(`chatgate data export` sft.jsonl). Reports held-out answer log-likelihood before and after."""
from __future__ import annotations

import random
from pathlib import Path

import torch

from services.training import chat, data, loop, runs
from services.training.config import SFTConfig
from services.training.pretrain import save_model


def examples(cfg: SFTConfig) -> list[data.Example]:
    _, wheels = cfg.roots()
    rows = data.qa_examples(wheels) + data.chatterbot_examples(wheels)
    if cfg.data is not None:
        rows += data.export_examples(cfg.data) * cfg.export_repeat
    return rows


def inputs(cfg: SFTConfig, runs_root: Path) -> dict:
    base = runs.resolve_model(cfg.base, runs_root)
    return {"base": runs.model_fingerprint(base), "wheels": [w["sha256"] for w in data.WHEELS.values()],
            "export": data.folder_fingerprint(cfg.data)}


def split(rows: list[data.Example], cfg: SFTConfig) -> tuple[list, list]:
    """Split by prompt: the same question never appears on both sides."""
    key = [str(r.messages) for r in rows]
    train = [r for r, k in zip(rows, key) if not data.held_out(k, cfg.heldout_fraction)]
    heldout = [r for r, k in zip(rows, key) if data.held_out(k, cfg.heldout_fraction)]
    random.Random(cfg.seed).shuffle(heldout)
    return train, heldout[: cfg.max_eval]


def collate(tok, encoded: list[tuple[list[int], list[int]]]) -> dict:
    ids = chat.pad_right([e[0] for e in encoded], tok.pad_token_id)
    labels = chat.pad_right([e[1] for e in encoded], chat.IGNORE)
    mask = chat.pad_right([[1] * len(e[0]) for e in encoded], 0)
    return {"ids": ids, "labels": labels, "mask": mask}


def load_causal_lm(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), tok


def run_stage(cfg: SFTConfig, run: Path) -> dict:
    runs_root, _ = cfg.roots()
    base = runs.resolve_model(cfg.base, runs_root)
    model, tok = load_causal_lm(base)
    train_rows, eval_rows = split(examples(cfg), cfg)
    train_enc = [chat.encode(tok, r.messages, r.answer, cfg.max_len) for r in train_rows]
    eval_batch = collate(tok, [chat.encode(tok, r.messages, r.answer, cfg.max_len) for r in eval_rows])

    def make_batch(gen: torch.Generator) -> dict:
        idx = torch.randint(0, len(train_enc), (cfg.batch_size,), generator=gen).tolist()
        return collate(tok, [train_enc[i] for i in idx])

    def loss_fn(m, batch):
        b = loop.shard(batch, cfg.batch_size)
        lp, n = chat.answer_logprobs(m, b["ids"], b["labels"], b["mask"])
        return -lp.sum() / n.sum().clamp(min=1), {}

    @torch.no_grad()
    def evaluate(m) -> dict:
        lp, n = chat.answer_logprobs(m, eval_batch["ids"], eval_batch["labels"], eval_batch["mask"])
        return {"eval_answer_logprob": float(lp.sum() / n.sum())}

    history = loop.train(model, cfg, run, "sft", make_batch, loss_fn, evaluate)
    loop.write_digest(run, model)
    if loop.is_main():
        save_model(model, tok, run / "model")
    return {
        "base": str(base), "train_examples": len(train_enc), "eval_examples": len(eval_rows),
        "export_examples": len(data.export_examples(cfg.data)) if cfg.data else 0,
        # mean log-probability per answer token on held-out prompts (higher is better)
        "base_eval_answer_logprob": history["eval_answer_logprob"][0][1],
        "eval_answer_logprob": history["eval_answer_logprob"][-1][1],
        "history": history,
        "panels": {"answer-token loss": {"train": history["train_loss"]},
                   "held-out answer log-prob / token": {"sft": history["eval_answer_logprob"]}},
    }
