"""Fine-tune the top layers of multilingual-e5-small on the categories (a semantic build step).

Why: with the encoder frozen, the MLP heads learn the training frames and no head variant left the
benign/recall trade-off curve (model card, experiments 10-12); a fine-tune is the lever.
How it stays cheap on 2 cores: only the top TUNE_LAYERS layers train. The layers below run once,
in the int8 ONNX graph run time uses (so the top layers learn on exactly the states they will see),
and their output is cached; an epoch then costs the top layers' forward and backward only.
Rows whose group falls in HOLDOUT_FOLD are never trained on: the heads' cuts come from them, so the
cuts are not chosen on text the encoder has learned.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from tools.moderation import e5_export as ee
from tools.moderation import semantic_train as st

TUNE_LAYERS = 0  # off: experiment 14 (2 layers, 2 epochs) raised every benign rate; --finetune-layers N
EPOCHS = 2
BATCH = 32
LR = 5e-5  # the encoder's layers
HEAD_LR = 2e-3  # the linear probe that trains with them (thrown away: the build's heads retrain)
DROPOUT = 0.1
HOLDOUT_FOLD = 0
SEED = 0


def log(msg: str) -> None:
    print(f"[moderation.finetune] {msg}", flush=True)


def _bottom_states(model, tokenizer_path: Path, texts: list[str], workdir: Path, threads: int, upto: int):
    """texts -> (per text: hidden state under the tuned layers [T, H] fp16, mid-layer block [H])
    from the int8 ONNX graph of the frozen layers."""
    import torch

    from services.moderation.encoder import Encoder

    class Bottom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.e5 = model

        def forward(self, input_ids, attention_mask):
            return self.e5.bottom(input_ids, attention_mask, upto)

    ee.export(Bottom(), workdir / "bottom.onnx", {"hidden": {0: "n", 1: "t"}, "mid": {0: "n"}})
    ee.quantize(workdir / "bottom.onnx", workdir / "bottom8.onnx")
    enc = Encoder(workdir / "bottom8.onnx", tokenizer_path, threads=threads)  # run time's tokeniser and session
    seqs = [e.ids for e in enc.tokenizer.encode_batch(texts)]
    order = sorted(range(len(texts)), key=lambda i: (len(seqs[i]), texts[i]))
    hidden: list = [None] * len(texts)
    mid = np.zeros((len(texts), model.eln_w.shape[0]), dtype=np.float32)
    t0 = time.time()
    for k in range(0, len(order), 16):
        idx = order[k : k + 16]
        ids, mask = Encoder._pad([seqs[i] for i in idx])
        h, m = enc.session.run(["hidden", "mid"], {"input_ids": ids, "attention_mask": mask})
        for j, i in enumerate(idx):
            hidden[i] = h[j, : len(seqs[i])].astype(np.float16)
        mid[idx] = m
        if k % (16 * 400) == 0:
            log(f"frozen layers: {k + len(idx)}/{len(texts)} texts ({time.time() - t0:.0f}s)")
    return hidden, mid


def finetune(model, tokenizer_path: Path, rows: list[dict], workdir: Path, threads: int = 2,
             tune_layers: int = TUNE_LAYERS, epochs: int = EPOCHS) -> dict:
    """Train the top `tune_layers` layers of `model` in place on rows outside HOLDOUT_FOLD; returns info."""
    import torch
    import torch.nn.functional as F

    assert len(model.layers) - tune_layers >= ee.MID_LAYER, "the mid-layer block must stay frozen"
    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    t0 = time.time()
    rows = [r for r in rows if st.content_fold(r["group"]) != HOLDOUT_FOLD]
    texts = sorted({r["text"] for r in rows})
    index = {t: i for i, t in enumerate(texts)}
    y_text = np.zeros((len(texts), len(st.CATEGORIES)), dtype=np.float32)
    for r, y in zip(rows, st.label_matrix(rows)):  # a text with several label sets keeps their union
        y_text[index[r["text"]]] = np.maximum(y_text[index[r["text"]]], y)
    hidden, mid = _bottom_states(model, tokenizer_path, texts, workdir, threads, len(model.layers) - tune_layers)
    log(f"{len(texts)} texts under the top {tune_layers} layers cached ({time.time() - t0:.0f}s)")

    start = len(model.layers) - tune_layers
    layers = copy.deepcopy(model.layers[start:]).train()
    for p in layers.parameters():
        p.requires_grad_(True)

    def batch(idx):
        width = max(len(hidden[i]) for i in idx)
        x = torch.zeros((len(idx), width, hidden[idx[0]].shape[1]))
        mask = torch.zeros((len(idx), width))
        for j, i in enumerate(idx):
            x[j, : len(hidden[i])] = torch.from_numpy(hidden[i].astype(np.float32))
            mask[j, : len(hidden[i])] = 1.0
        return x, mask, torch.from_numpy(mid[idx]), torch.from_numpy(y_text[idx])

    def features(x, mask, mid_block):
        bias = ee.attention_bias(mask, x.dtype)
        for layer in layers:
            x = layer(x, bias)
        return ee.pool(x, mid_block, mask)

    by_len = sorted(range(len(texts)), key=lambda i: (len(hidden[i]), texts[i]))
    batches = [by_len[k : k + BATCH] for k in range(0, len(by_len), BATCH)]
    with torch.no_grad():  # standardise the probe's inputs (e5's embeddings all point one way)
        sample = [b for j, b in enumerate(batches) if j % 8 == 0]
        f0 = torch.cat([features(*batch(b)[:3]) for b in sample])
        mu, sd = f0.mean(0), f0.std(0) + 1e-6
    probe = torch.nn.Linear(f0.shape[1], len(st.CATEGORIES))
    pos = torch.from_numpy(y_text.sum(0))
    pos_weight = ((len(texts) - pos) / pos.clamp(min=1)).clamp(max=20.0).sqrt()
    opt = torch.optim.AdamW([{"params": layers.parameters(), "lr": LR},
                             {"params": probe.parameters(), "lr": HEAD_LR}], weight_decay=0.01)
    steps = epochs * len(batches)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[LR, HEAD_LR], total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(SEED)
    done, t1, losses = 0, time.time(), []
    for epoch in range(epochs):
        for j in rng.permutation(len(batches)):
            x, mask, mid_block, y = batch(batches[j])
            logits = probe(F.dropout((features(x, mask, mid_block) - mu) / sd, DROPOUT, training=True))
            loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            done += 1
            if done % max(1, steps // 10) == 0:
                log(f"epoch {epoch + 1}/{epochs} step {done}/{steps} loss {np.mean(losses[-200:]):.4f} "
                    f"({time.time() - t1:.0f}s)")
    layers.eval()
    for i, layer in enumerate(layers):
        for p in layer.parameters():
            p.requires_grad_(False)
        model.layers[start + i].load_state_dict(layer.state_dict())
    info = {"layers": tune_layers, "epochs": epochs, "batch": BATCH, "lr": LR, "texts": len(texts),
            "holdout_fold": HOLDOUT_FOLD, "final_loss": round(float(np.mean(losses[-200:])), 4),
            "seconds": round(time.time() - t0, 1)}
    log(f"done: {info}")
    return info
