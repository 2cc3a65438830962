"""Chat formatting shared by SFT, reward and PPO: the tokenizer's own chat template for the prompt,
then the answer and the end-of-turn token; prompt positions are masked out of the SFT loss."""
from __future__ import annotations

import torch

IGNORE = -100


def prompt_ids(tok, messages: list[dict]) -> list[int]:
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tok(text, add_special_tokens=False)["input_ids"]


def answer_ids(tok, answer: str) -> list[int]:
    return tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def encode(tok, messages: list[dict], answer: str, max_len: int) -> tuple[list[int], list[int]]:
    """(input ids, labels): labels are IGNORE on the prompt; the prompt is cut from the left first."""
    p, a = prompt_ids(tok, messages), answer_ids(tok, answer)
    a = a[: max_len - min(len(p), max_len // 2)]
    p = p[len(p) - (max_len - len(a)):] if len(p) + len(a) > max_len else p
    return p + a, [IGNORE] * len(p) + a


def pad_right(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(map(len, rows))
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def pad_left(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.tensor([[value] * (width - len(r)) + r for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    return ids, mask


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding (generation and scoring must agree on them)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def answer_logprobs(model, ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of answer-token log-probabilities per row, and the number of answer tokens per row."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    keep = target != IGNORE
    lp = torch.log_softmax(logits.float(), -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (lp * keep).sum(-1), keep.sum(-1)


def last_hidden(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Final hidden states of a *ForSequenceClassification / *ForCausalLM backbone."""
    base = getattr(model, model.base_model_prefix)
    return base(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).last_hidden_state


def scores(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scalar head (`score`) on the last real token of each (left- or right-padded) row."""
    h = last_hidden(model, ids, mask)
    last = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)
    return model.score(h[torch.arange(len(ids)), last]).squeeze(-1).float()
