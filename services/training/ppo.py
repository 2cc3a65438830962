"""Stage 3, PPO in the InstructGPT / DeepSpeed-Chat step-3 shape: actor (from SFT), frozen reference
(SFT), critic (from the reward model), frozen reward model. Per-token reward -kl_coef*(log p - log
p_ref) plus the clipped reward-model score on the last token; GAE; clipped policy and value losses.

TRL 1.16 has no PPO trainer any more, so this is a compact implementation of those pieces."""
from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.distributed as dist

from services.training import chat, loop, runs, sft
from services.training.config import PPOConfig, SFTConfig
from services.training.pretrain import save_model
from services.training.reward import load_reward_model


def inputs(cfg: PPOConfig, runs_root: Path) -> dict:
    return {"actor": runs.model_fingerprint(runs.resolve_model(cfg.actor, runs_root)),
            "reward": runs.model_fingerprint(runs.resolve_model(cfg.reward, runs_root))}


class Valuer(torch.nn.Module):
    """Critic: the reward model's backbone + scalar head applied at every position."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.score(chat.last_hidden(self.model, ids, mask)).squeeze(-1).float()


def token_logprobs(actor, seq: torch.Tensor, mask: torch.Tensor, p: int) -> torch.Tensor:
    logits = actor(input_ids=seq, attention_mask=mask, position_ids=chat.positions(mask)).logits[:, p - 1:-1]
    return torch.log_softmax(logits.float(), -1).gather(-1, seq[:, p:].unsqueeze(-1)).squeeze(-1)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation over the response tokens (mask: 1 on real response tokens)."""
    adv = torch.zeros_like(rewards)
    next_value, next_adv = torch.zeros(len(rewards)), torch.zeros(len(rewards))
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_adv = (delta + gamma * lam * next_adv) * mask[:, t]
        next_value = values[:, t] * mask[:, t]
        adv[:, t] = next_adv
    return adv, adv + values


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def prompt_pool(cfg: PPOConfig, tok) -> list[list[int]]:
    rows = sft.examples(SFTConfig(out_root=cfg.out_root, wheels_dir=cfg.wheels_dir))
    seen, out = set(), []
    for r in rows:
        key = str(r.messages)
        if key not in seen:
            seen.add(key)
            out.append(chat.prompt_ids(tok, r.messages)[-cfg.max_prompt_len:])
    random.Random(cfg.seed).shuffle(out)
    return out


@torch.no_grad()
def rollout(cfg, actor, ref, reward_model, critic, tok, prompts: list[list[int]], it: int) -> dict:
    ids, pmask = chat.pad_left(prompts, tok.pad_token_id)
    p = ids.shape[1]
    torch.manual_seed(cfg.seed * 100_003 + it * 101 + loop.rank_world()[0])
    seq = actor.generate(input_ids=ids, attention_mask=pmask, do_sample=True, temperature=cfg.temperature, top_k=0,
                         top_p=1.0, max_new_tokens=cfg.new_tokens, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    resp = seq[:, p:]
    is_eos = (resp == tok.eos_token_id).long()
    rmask = ((is_eos.cumsum(-1) - is_eos) == 0).float()  # up to and including the first end-of-turn
    mask = torch.cat([pmask, rmask.long()], 1)
    seq = torch.where(mask.bool(), seq, torch.full_like(seq, tok.pad_token_id))
    old_lp = token_logprobs(actor, seq, mask, p)
    ref_lp = token_logprobs(ref, seq, mask, p)
    values = critic(seq, mask)[:, p - 1:-1]
    score = chat.scores(reward_model, seq, mask).clamp(-cfg.reward_clip, cfg.reward_clip)
    kl = (old_lp - ref_lp) * rmask
    rewards = -cfg.kl_coef * kl
    last = (rmask.sum(-1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(seq)), last] += score
    adv, returns = gae(rewards, values * rmask, rmask, cfg.gamma, cfg.lam)
    mean, var = masked_mean(adv, rmask), masked_mean((adv - masked_mean(adv, rmask)) ** 2, rmask)
    adv = (adv - mean) / (var.sqrt() + 1e-8)
    return {"seq": seq, "mask": mask, "rmask": rmask, "p": p, "old_lp": old_lp, "values": values * rmask,
            "adv": adv, "returns": returns, "score": score, "kl": kl.sum(-1), "length": rmask.sum(-1)}


def update(cfg, actor, critic, opt_a, opt_c, r: dict) -> dict:
    logs = {}
    for _ in range(cfg.ppo_epochs):
        lp = token_logprobs(actor, r["seq"], r["mask"], r["p"])
        ratio = torch.exp(lp - r["old_lp"])
        pg = torch.max(-r["adv"] * ratio, -r["adv"] * ratio.clamp(1 - cfg.clip, 1 + cfg.clip))
        pg_loss = masked_mean(pg, r["rmask"])
        opt_a.zero_grad(set_to_none=True)
        pg_loss.backward()
        torch.nn.utils.clip_grad_norm_(actor.parameters(), 1.0)
        opt_a.step()
        v = critic(r["seq"], r["mask"])[:, r["p"] - 1:-1]
        v_clip = r["values"] + (v - r["values"]).clamp(-cfg.value_clip, cfg.value_clip)
        vf_loss = 0.5 * masked_mean(torch.max((v - r["returns"]) ** 2, (v_clip - r["returns"]) ** 2), r["rmask"])
        opt_c.zero_grad(set_to_none=True)
        vf_loss.backward()
        torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
        opt_c.step()
        logs = {"policy_loss": float(pg_loss.detach()), "value_loss": float(vf_loss.detach()),
                "clip_fraction": float(masked_mean(((ratio - 1).abs() > cfg.clip).float(), r["rmask"]))}
    return logs


def all_mean(values: dict) -> dict:
    """Iteration metrics averaged over workers (identical logs on every rank)."""
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    if loop.rank_world()[1] > 1:
        dist.all_reduce(t)
        t /= loop.rank_world()[1]
    return dict(zip(values, t.tolist()))


def run_stage(cfg: PPOConfig, run: Path) -> dict:
    runs_root, _ = cfg.roots()
    actor_dir, reward_dir = runs.resolve_model(cfg.actor, runs_root), runs.resolve_model(cfg.reward, runs_root)
    actor, tok = sft.load_causal_lm(actor_dir)
    ref, _ = sft.load_causal_lm(actor_dir)
    reward_model, rtok = load_reward_model(reward_dir)
    critic_model, _ = load_reward_model(reward_dir)
    if rtok.get_vocab() != tok.get_vocab():
        raise ValueError("the reward model and the actor must share a tokenizer")
    for frozen in (ref, reward_model):
        frozen.eval().requires_grad_(False)
    ref_digest = loop.param_digest(ref)
    critic = Valuer(critic_model)
    torch.manual_seed(cfg.seed)
    actor_ddp, critic_ddp = loop.wrap(actor), loop.wrap(critic)
    opt_a = torch.optim.AdamW(actor.parameters(), lr=cfg.lr, betas=(0.9, 0.95))
    opt_c = torch.optim.AdamW(critic.parameters(), lr=cfg.critic_lr, betas=(0.9, 0.95))
    history: dict[str, list] = {}
    start = 0
    state = loop.load_checkpoint(run)
    if state is not None:
        actor.load_state_dict(state["actor"])
        critic.load_state_dict(state["critic"])
        opt_a.load_state_dict(state["opt_a"])
        opt_c.load_state_dict(state["opt_c"])
        history, start = state["history"], state["step"]
    pool = prompt_pool(cfg, tok)
    rank, world = loop.rank_world()
    bar = loop.progress(cfg.steps, start, "ppo", cfg.progress)
    for it in range(start, cfg.steps):
        idx = torch.randint(0, len(pool), (cfg.batch_size,), generator=loop.step_generator(cfg.seed, it)).tolist()
        actor.eval()
        r = rollout(cfg, actor, ref, reward_model, critic, tok, [pool[i] for i in idx[rank::world]], it)
        actor.train()
        logs = update(cfg, actor_ddp, critic_ddp, opt_a, opt_c, r)
        logs = all_mean({"reward": float(r["score"].mean()), "kl": float(r["kl"].mean()),
                         "response_tokens": float(r["length"].mean()), **logs})
        for k, v in logs.items():
            history.setdefault(k, []).append((it + 1, v))
        bar.update(1)
        bar.set_postfix(reward=f"{logs['reward']:.2f}", kl=f"{logs['kl']:.2f}")
        if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.steps:
            loop.save_checkpoint(run, {"actor": actor.state_dict(), "critic": critic.state_dict(), "opt_a": opt_a.state_dict(),
                                       "opt_c": opt_c.state_dict(), "history": history, "step": it + 1})
    bar.close()
    loop.write_digest(run, actor)
    if loop.is_main():
        save_model(actor, tok, run / "model")
        save_model(critic_model, tok, run / "critic")
    rewards, kls = [v for _, v in history["reward"]], [v for _, v in history["kl"]]
    k = max(1, len(rewards) // 5)
    return {
        "actor": str(actor_dir), "reward_model": str(reward_dir), "iterations": len(rewards),
        "reward_first": sum(rewards[:k]) / k, "reward_last": sum(rewards[-k:]) / k,
        "kl_max": max(kls), "kl_last": kls[-1], "kl_bound": cfg.kl_bound,
        "reference_digest": ref_digest, "reference_unchanged": loop.param_digest(ref) == ref_digest,
        "history": history,
        "panels": {"reward-model score (mean per rollout)": {"reward": history["reward"]},
                   "KL to reference (nats / sequence)": {"kl": history["kl"], "stated bound": cfg.kl_bound},
                   "losses": {"policy": history["policy_loss"], "value": history["value_loss"]}},
    }
