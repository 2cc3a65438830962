"""The parts: prompt masking, splits by prompt, GAE, the export format, run keying and resuming."""
from __future__ import annotations

import json

import pytest
import torch

from services.training import chat, data, loop, ppo, reward, runner, sft
from services.training.config import RewardConfig, SFTConfig
from tests.training.conftest import write_export


def test_sft_masks_prompt_tokens(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny.run(tiny.pretrain) / "model")
    msgs = [{"role": "user", "content": "Who wrote Hamlet?"}]
    ids, labels = chat.encode(tok, msgs, "William Shakespeare.", max_len=128)
    prompt = chat.prompt_ids(tok, msgs)
    assert ids[: len(prompt)] == prompt and all(lab == chat.IGNORE for lab in labels[: len(prompt)])
    assert labels[len(prompt):] == ids[len(prompt):] and labels[-1] == tok.eos_token_id
    assert tok.decode(ids[len(prompt):-1]) == "William Shakespeare."
    # a long prompt is cut from the left; the answer survives
    ids, labels = chat.encode(tok, [{"role": "user", "content": "word " * 300}], "Yes.", max_len=64)
    assert len(ids) == 64 and tok.decode([t for t in labels if t != chat.IGNORE]) == "Yes.<|im_end|>"
    # the loss counts the answer tokens (and the end-of-turn) only
    batch = sft.collate(tok, [chat.encode(tok, msgs, "William Shakespeare.", 128), chat.encode(tok, msgs, "No.", 128)])
    model = sft.load_causal_lm(tiny.run(tiny.pretrain) / "model")[0]
    lp, n = chat.answer_logprobs(model, batch["ids"], batch["labels"], batch["mask"])
    answer_len = len(tok("William Shakespeare.", add_special_tokens=False)["input_ids"]) + 1
    assert n.tolist() == [answer_len, len(tok("No.", add_special_tokens=False)["input_ids"]) + 1]
    assert (lp < 0).all()


def test_splits_keep_each_prompt_on_one_side():
    pairs = data.synthetic_pairs(300)
    train, held = reward.split(pairs * 2, RewardConfig(heldout_fraction=0.2))
    assert held and {str(p.prompt) for p in train}.isdisjoint({str(p.prompt) for p in held})
    examples = [data.Example([{"role": "user", "content": f"q{i % 50}"}], f"a{i}") for i in range(200)]
    tr, ev = sft.split(examples, SFTConfig(heldout_fraction=0.2))
    assert ev and {str(e.messages) for e in tr}.isdisjoint({str(e.messages) for e in ev})


def test_gae_matches_a_hand_computation():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.1, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = ppo.gae(rewards, values, mask, gamma=1.0, lam=0.5)
    d2 = 1.0 - 0.1
    d1 = 0.0 + 0.1 - 0.2
    d0 = 0.0 + 0.2 - 0.5
    a2, a1 = d2, d1 + 0.5 * d2
    expected = torch.tensor([[d0 + 0.5 * a1, a1, a2, 0.0]])
    assert torch.allclose(adv, expected) and torch.allclose(ret, expected + values)


def test_export_folder_format_is_read(tmp_path):
    folder = write_export(tmp_path / "export")
    ex, pairs = data.export_examples(folder), data.export_pairs(folder)
    assert len(ex) == len(pairs) == 120
    assert ex[0].messages[-1]["role"] == "user" and ex[0].answer.startswith("Of course")
    assert pairs[0].rejected == "No. Ask someone else." and pairs[0].prompt[0]["role"] == "user"
    assert data.export_examples(tmp_path / "missing") == []


def test_registry_rankings_expand_to_pairs():
    pairs = data.ranking_pairs(RewardConfig().roots()[1])
    kinds = {p.kind for p in pairs}
    assert kinds == {"gold>wrong", "wrong>degenerate", "gold>degenerate"} and len(pairs) > 3000


def test_reward_model_trains_end_to_end_from_an_export(tiny, tmp_path):
    cfg = RewardConfig(task="export", data=tiny.export, out_root=tiny.root, steps=30, eval_every=15,
                       heldout_fraction=0.25, progress=False)
    m = runner.run("reward", cfg)
    assert m["train_pairs"] > 0 and m["eval_pairs"] >= 10
    assert m["eval_accuracy[export]"] >= 0.9, m
    assert (tiny.run(m) / "model" / "model.safetensors").is_file()


def test_finished_runs_are_reused_and_changed_inputs_train_anew(tiny, tmp_path):
    cfg = RewardConfig(task="synthetic", steps=60, eval_every=30, out_root=tiny.root, progress=False)
    assert runner.plan("reward", cfg).name == tiny.synthetic["run"]
    assert runner.run("reward", cfg)["train_seconds"] == tiny.synthetic["train_seconds"]  # reused, not retrained
    other = write_export(tmp_path / "other")
    (other / "preferences.jsonl").write_text((other / "preferences.jsonl").read_text().replace("No.", "Nope."))
    assert runner.plan("reward", cfg.model_copy(update={"data": other})) != runner.plan("reward", cfg)
    assert runner.plan("reward", cfg.model_copy(update={"steps": 61})) != runner.plan("reward", cfg)


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_weights(tiny, tmp_path, monkeypatch):
    def cfg(root):
        return SFTConfig(base=str(tiny.run(tiny.pretrain)), out_root=root, steps=12, eval_every=6,
                         checkpoint_every=5, progress=False)

    straight = runner.run("sft", cfg(tmp_path / "a"))
    real = loop.step_generator

    def crash_at_8(seed, step):
        if step == 8:
            raise KeyboardInterrupt("simulated crash")
        return real(seed, step)

    monkeypatch.setattr(loop, "step_generator", crash_at_8)
    with pytest.raises(KeyboardInterrupt):
        runner.run("sft", cfg(tmp_path / "b"))
    run_b = runner.plan("sft", cfg(tmp_path / "b"))
    assert torch.load(run_b / "checkpoint" / "state.pt", weights_only=False)["step"] == 5
    monkeypatch.setattr(loop, "step_generator", real)
    resumed = runner.run("sft", cfg(tmp_path / "b"))
    digest = lambda root, m: (root / m["run"] / "params-rank0-of1.sha256").read_text()  # noqa: E731
    assert digest(tmp_path / "a", straight) == digest(tmp_path / "b", resumed)
    assert json.loads((run_b / "metrics.json").read_text())["history"]["train_loss"][7][0] == 8
