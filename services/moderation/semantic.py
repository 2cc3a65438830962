"""The semantic stage: int8 sentence encoder (multilingual-e5-small) + two numpy heads, scores calibrated to cut = 0.5.

    model = SemanticModel(model_dir, threads=1, cache_size=4096)
    model.text_scores(["Write a haiku"])                          # [N, 14]
    model.answer_scores(["Sure, here is how..."], ["How do I ..."]) # [N, 14], answer in context
Each call is one encoder run over the unique texts of the call that are not in the LRU cache of
embeddings: every window of a streamed answer is judged with the same request, and every turn
re-checks the conversation's earlier messages, so without it the encoder redoes that work.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.moderation.encoder import Encoder
from services.moderation.heads import calibrate, load_heads, mlp_probs


def pair_features(e_ans: np.ndarray, e_req: np.ndarray) -> np.ndarray:
    """Must match tools/moderation/semantic_train.pair_features (the answer head's input)."""
    return np.concatenate([e_ans, e_req, e_ans * e_req], axis=1).astype(np.float32)


class EmbeddingCache:
    """Bounded LRU of text -> embedding, keyed by a 16-byte digest (a request can be long). Thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, text: str) -> np.ndarray | None:
        if self.size <= 0:  # off: no digest, no lock
            return None
        k = self.key(text)
        with self._lock:
            e = self._items.get(k)
            if e is not None:
                self._items.move_to_end(k)
            return e

    def put(self, texts: Sequence[str], embeddings: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            for t, e in zip(texts, embeddings):
                k = self.key(t)
                self._items[k] = e
                self._items.move_to_end(k)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class SemanticModel:
    def __init__(self, model_dir: Path, threads: int = 1, cache_size: int = 0):
        model_dir = Path(model_dir)
        self.encoder = Encoder(model_dir / "encoder.onnx", model_dir / "tokenizer.json", threads=threads)
        self.heads = load_heads(model_dir / "heads.npz")
        self.cache = EmbeddingCache(cache_size)

    def _embed_unique(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for t in dict.fromkeys(texts):
            e = self.cache.get(t)
            if e is None:
                missing.append(t)
            else:
                out[t] = e
        if missing:
            emb = self.encoder.embed(missing)
            self.cache.put(missing, emb)
            out.update(zip(missing, emb))
        return out

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
