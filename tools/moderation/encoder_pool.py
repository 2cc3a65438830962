"""The build's encoder on every core: one single-threaded `Encoder` per process.

The encoder runs one text per session run (services/moderation/encoder.py), and a short text
leaves a second intra-op thread mostly idle; two processes of one thread each embed 1.57x as many
texts as one process of two threads (3,000 eval texts, session 17's EPYC; model card). One thread is also what run time uses
(`moderation.intra_op_threads`), so the heads train on exactly the embeddings run time computes.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

_encoder = None  # the worker process's own Encoder


def spawn_pool(processes: int, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """Worker processes for the build's one-threaded jobs. Spawned, not forked: the build process
    has run torch (OpenMP), and forked copies of it can hang."""
    return ProcessPoolExecutor(max(1, processes), mp_context=get_context("spawn"), initializer=initializer,
                               initargs=initargs)


def _start(onnx_path: str, tokenizer_path: str) -> None:
    global _encoder
    from services.moderation.encoder import Encoder

    _encoder = Encoder(Path(onnx_path), Path(tokenizer_path), threads=1)


def _embed(texts: list[str]) -> np.ndarray:
    return _encoder.embed(texts)


class EncoderPool:
    """`embed(texts)` like `Encoder.embed`, the texts split evenly over `processes` workers."""

    threads = 1  # per worker: part of the embedding store's key

    def __init__(self, onnx_path: Path, tokenizer_path: Path, processes: int):
        self.processes = max(1, processes)
        self._pool = spawn_pool(self.processes, _start, (str(onnx_path), str(tokenizer_path)))

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        step = -(-len(texts) // self.processes)
        parts = [list(texts[i:i + step]) for i in range(0, len(texts), step)]
        return np.concatenate(list(self._pool.map(_embed, parts)))

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> "EncoderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
