"""Embeddings kept between classifier builds, so a build embeds only texts it has not seen.

Exact, not approximate: the encoder runs one text per session run (services/moderation/encoder.py,
model card experiment 16), so a text's embedding is a function of the text and of what the key
covers: the encoder and tokenizer bytes, the token cap, the onnxruntime version and the thread
count. Any change there starts an empty store. A store keeps the texts of the last build only, so
it does not grow with every data change; it lives in the set-up cache, outside the build's key
(deleting it changes no artefact, only the build's time).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from services.moderation.semantic import EmbeddingCache

_digest = EmbeddingCache.key  # run time's text digest: one definition


def store_key(encoder: Path, tokenizer: Path, max_tokens: int, threads: int) -> str:
    import onnxruntime as ort

    h = hashlib.sha256()
    for p in (encoder, tokenizer):
        h.update(hashlib.sha256(p.read_bytes()).digest())
    h.update(f"{max_tokens}|{ort.__version__}|{threads}".encode())
    return h.hexdigest()[:16]


def _digests_of(stored: np.ndarray) -> list[bytes]:
    if stored.dtype.kind == "S":  # a store written before session 17 (its digests lost trailing NULs)
        return stored.tolist()
    return [row.tobytes() for row in stored]


class EmbeddingStore:
    """`folder/<key>.npz`: 16-byte text digests and float32 embeddings, row for row."""

    def __init__(self, folder: Path, key: str):
        self.path = folder / f"{key}.npz"
        self._known: dict[bytes, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                self._known = dict(zip(_digests_of(data["digests"]), data["emb"]))

    def __len__(self) -> int:
        return len(self._known)

    def lookup(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of those texts that have one."""
        out = {}
        for t in texts:
            e = self._known.get(_digest(t))
            if e is not None:
                out[t] = e
        return out

    def save(self, embeddings: dict[str, np.ndarray]) -> None:
        """Replace the store with exactly these texts (the last build's), atomically."""
        if not embeddings:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.stem}-{os.getpid()}.npz")
        # uint8 [N, 16], not "S16": numpy's bytes strings drop trailing NUL bytes, so one digest in
        # ~256 came back shorter and its text was embedded again by every build
        digests = np.frombuffer(b"".join(_digest(t) for t in embeddings), dtype=np.uint8).reshape(-1, 16)
        np.savez(tmp, digests=digests, emb=np.stack(list(embeddings.values())).astype(np.float32))
        os.replace(tmp, self.path)
