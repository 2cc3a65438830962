"""The semantic stage's sentence encoder at run time: onnxruntime + the `tokenizers` library (no torch).

One `embed` call = one tokeniser batch; the texts are sorted by token count and run in chunks of
similar length (`CHUNK`), each padded only to its own longest text: windows of a conversation
range from a few tokens to ~60, and one padded batch spent most of its time on padding.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_TOKENS = 128  # windows are sentence-sized; longer texts are truncated
CHUNK = 8  # texts per session run (sorted by length)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class Encoder:
    """texts -> L2-normalised sentence embeddings [N, dim] (float32). Thread-safe."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, threads: int = 1, max_tokens: int = MAX_TOKENS):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        self.session = _session(onnx_path, threads)
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return self._pad([e.ids for e in self.tokenizer.encode_batch(list(texts))])

    @staticmethod
    def _pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(s) for s in seqs)
        ids = np.zeros((len(seqs), width), dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
        return ids, mask

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        seqs = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for k in range(0, len(order), CHUNK):
            idx = order[k : k + CHUNK]
            ids, mask = self._pad([seqs[i] for i in idx])
            out[idx] = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        return out
