"""The semantic stage: int8 sentence encoder (multilingual-e5-small) + two numpy heads, scores calibrated to cut = 0.5.

    model = SemanticModel(model_dir, threads=1)
    model.text_scores(["Write a haiku"])                          # [N, 14]
    model.answer_scores(["Sure, here is how..."], ["How do I ..."]) # [N, 14], answer in context
Each call is one encoder run over all unique texts of the call.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.moderation.encoder import Encoder
from services.moderation.heads import calibrate, load_heads, mlp_probs


def pair_features(e_ans: np.ndarray, e_req: np.ndarray) -> np.ndarray:
    """Must match tools/moderation/semantic_train.pair_features (the answer head's input)."""
    return np.concatenate([e_ans, e_req, e_ans * e_req], axis=1).astype(np.float32)


class SemanticModel:
    def __init__(self, model_dir: Path, threads: int = 1):
        model_dir = Path(model_dir)
        self.encoder = Encoder(model_dir / "encoder.onnx", model_dir / "tokenizer.json", threads=threads)
        self.heads = load_heads(model_dir / "heads.npz")

    def _embed_unique(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        uniq = list(dict.fromkeys(texts))
        return dict(zip(uniq, self.encoder.embed(uniq)))

    def _head(self, name: str, x: np.ndarray) -> np.ndarray:
        h = self.heads[name]
        return calibrate(mlp_probs(h, x), h["cuts"])

    def text_scores(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.heads["text"]["cuts"])), dtype=np.float32)
        emb = self._embed_unique(texts)
        return self._head("text", np.stack([emb[t] for t in texts]))

    def answer_scores(self, answers: Sequence[str], requests: Sequence[str]) -> np.ndarray:
        if not answers:
            return np.zeros((0, len(self.heads["answer"]["cuts"])), dtype=np.float32)
        emb = self._embed_unique([*answers, *requests])
        x = pair_features(np.stack([emb[a] for a in answers]), np.stack([emb[r] for r in requests]))
        return self._head("answer", x)
