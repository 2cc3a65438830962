"""The semantic stage's sentence encoder at run time: onnxruntime + the `tokenizers` library (no torch).

One `embed` call = one tokeniser batch + one session run; texts are padded to the longest in the
call only (dynamic padding), so short windows stay cheap.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_TOKENS = 128  # windows are sentence-sized; longer texts are truncated


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
        encs = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, mask = self.tokenize(texts)
        return self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
