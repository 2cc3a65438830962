"""The semantic stage: int8 sentence encoder (multilingual-e5-small) + numpy heads, scores calibrated to cut = 0.5.

    model = SemanticModel(model_dir, threads=1, cache_size=4096)
    model.text_scores(["Write a haiku"])                          # [N, 14]
    model.answer_scores(["Sure, here is how..."], ["How do I ..."]) # [N, 14], answer in context
Each call encodes only the unique texts of the call that are not in the LRU cache of embeddings:
every window of a streamed answer is judged with the same request, and every turn re-checks the
conversation's earlier messages, so without it the encoder redoes that work.

The cascade (artefacts with encoder_low.onnx / encoder_high.onnx and gate heads): every text first
runs the encoder's lower six layers; a gate head on their mid-layer block lets a text go when
every category is far below its cut (the build sets each category's `exit` point so that at most
GATE_MAX_LOSS of that category's training rows the full head catches out of fold are let go), and
only the other texts run the upper six layers and the full head. Most benign text stops half way, so a check costs about
half an encoder run. A text's verdict does not depend on the cache: the gate always decides first.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.moderation.encoder import Encoder, SplitEncoder
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
    def __init__(self, model_dir: Path, threads: int = 1, cache_size: int = 0, cascade: bool = True):
        model_dir = Path(model_dir)
        self.heads = load_heads(model_dir / "heads.npz")
        tok = model_dir / "tokenizer.json"
        self.gates = {name: self.heads[f"{name}_gate"] for name in ("text", "answer") if f"{name}_gate" in self.heads}
        if cascade and self.gates and (model_dir / "encoder_low.onnx").is_file():
            self.encoder = SplitEncoder(model_dir / "encoder_low.onnx", model_dir / "encoder_high.onnx", tok, threads=threads)
        else:  # cascade off, or an artefact from before it
            self.gates = {}
            self.encoder = Encoder(model_dir / "encoder.onnx", tok, threads=threads)
        self.cache = EmbeddingCache(cache_size)
        self.gate_counts = {"let_go": 0, "held": 0}  # texts the cascade let go / held (tools.moderation.bench)

    def _embed_unique(self, texts: Sequence[str], lows: dict | None = None) -> dict[str, np.ndarray]:
        """Whole embeddings. `lows`: texts whose lower half this call already ran (cascade)."""
        out: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for t in dict.fromkeys(texts):
            e = self.cache.get(t)
            if e is None or len(e) == getattr(self.encoder, "mid_dim", -1):  # only the mid block: a text the gate let go
                missing.append(t)
            else:
                out[t] = e
        if missing:
            if lows is None:
                emb = self.encoder.embed(missing)
            else:
                todo = [t for t in missing if t not in lows]
                lows.update(zip(todo, self.encoder.low(todo)))
                emb = np.stack([self.encoder.high(*lows[t]) for t in missing])
            self.cache.put(missing, emb)
            out.update(zip(missing, emb))
        return out

    def _mid_blocks(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], dict]:
        """(text -> mid-layer block, text -> low output of the texts encoded now). A cached whole
        embedding ends with the mid block; a text only the lower half ran for is cached as it."""
        mids: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for t in dict.fromkeys(texts):
            e = self.cache.get(t)
            if e is None:
                missing.append(t)
            else:
                mids[t] = e[-self.encoder.mid_dim:]
        lows = dict(zip(missing, self.encoder.low(missing))) if missing else {}
        for t, (_, mid) in lows.items():
            mids[t] = mid
        self.cache.put(missing, [mids[t] for t in missing])
        return mids, lows

    def _gate(self, name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(let go, scores for those): below its `exit` point in every category; their scores stay under 0.5."""
        g = self.gates[name]
        p = mlp_probs(g, x)
        exit_at = np.maximum(g["exit"], 1e-6)  # per category (0 would never let a text go)
        go = (p < exit_at).all(1)
        self.gate_counts["let_go"] += int(go.sum())
        self.gate_counts["held"] += int((~go).sum())
        return go, (0.5 * p / exit_at).astype(np.float32)

    def _head(self, name: str, x: np.ndarray) -> np.ndarray:
        h = self.heads[name]
        return calibrate(mlp_probs(h, x), h["cuts"])

    def text_scores(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.heads["text"]["cuts"])), dtype=np.float32)
        if "text" not in self.gates:
            emb = self._embed_unique(texts)
            return self._head("text", np.stack([emb[t] for t in texts]))
        mids, lows = self._mid_blocks(texts)
        go, scores = self._gate("text", np.stack([mids[t] for t in texts]))
        rest = [t for t, g in zip(texts, go) if not g]
        if rest:
            emb = self._embed_unique(rest, lows)
            scores[~go] = self._head("text", np.stack([emb[t] for t in rest]))
        return scores

    def answer_scores(self, answers: Sequence[str], requests: Sequence[str]) -> np.ndarray:
        if not answers:
            return np.zeros((0, len(self.heads["answer"]["cuts"])), dtype=np.float32)
        if "answer" not in self.gates:
            emb = self._embed_unique([*answers, *requests])
            return self._head("answer", pair_features(np.stack([emb[a] for a in answers]), np.stack([emb[r] for r in requests])))
        mids, lows = self._mid_blocks([*answers, *requests])
        go, scores = self._gate("answer", pair_features(np.stack([mids[a] for a in answers]), np.stack([mids[r] for r in requests])))
        idx = np.flatnonzero(~go)
        if len(idx):
            emb = self._embed_unique([*(answers[i] for i in idx), *(requests[i] for i in idx)], lows)
            x = pair_features(np.stack([emb[answers[i]] for i in idx]), np.stack([emb[requests[i]] for i in idx]))
            scores[idx] = self._head("answer", x)
        return scores
