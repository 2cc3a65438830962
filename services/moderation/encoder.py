"""The semantic stage's sentence encoder at run time: onnxruntime + the `tokenizers` library (no torch).

One `embed` call = one tokeniser batch, then one session run per text. Why not batched runs: the
int8 graph quantises activations dynamically with one scale per run, so a text's embedding
depended on the texts it was batched with (max |delta| 0.03, cosine to fp32 0.988-0.997), and 2.9 %
of input verdicts changed with their neighbours in a call (model card, experiment 16). Alone, a
text always gets the same embedding, at build time and at run time. Weight-only int4/int8 graphs
(batch-independent) measured 2.1-2.3x slower here (AVX2), so the int8 graph stays.
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


def _tokenizer(path: Path, max_tokens: int):
    """One text per call, so no padding; windows are sentence-sized, longer texts are truncated."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(max_length=max_tokens)
    tok.no_padding()
    return tok


class Encoder:
    """texts -> L2-normalised sentence embeddings [N, dim] (float32). Thread-safe."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, threads: int = 1, max_tokens: int = MAX_TOKENS):
        self.tokenizer = _tokenizer(tokenizer_path, max_tokens)
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
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts))):
            ids = np.asarray([enc.ids], dtype=np.int64)
            out[i] = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        return out


class SplitEncoder(Encoder):
    """The same int8 graph in two halves (tools/moderation/e5_export.split): `low` runs layers 1 to
    6 and returns their hidden states and the mid-layer block (the embedding's last third); `high`
    runs layers 7 to 12 on them and returns the whole embedding, bit for bit the one-graph
    `Encoder`'s. The cascade in semantic.py runs `high` only for texts its gate does not let go."""

    def __init__(self, low_path: Path, high_path: Path, tokenizer_path: Path, threads: int = 1,
                 max_tokens: int = MAX_TOKENS):
        self.tokenizer = _tokenizer(tokenizer_path, max_tokens)
        self.session = _session(low_path, threads)  # `session`: what tools wrap and count
        self.high_session = _session(high_path, threads)
        self._high_inputs = [i.name for i in self.high_session.get_inputs()]  # hidden, attention_mask, mid
        self.dim = int(self.high_session.get_outputs()[0].shape[-1])
        self.mid_dim = int(self.session.get_outputs()[1].shape[-1])

    def low(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: (hidden states after layer 6 [1, T, H], mid-layer block [mid_dim]); one run each."""
        out = []
        for enc in self.tokenizer.encode_batch(list(texts)):
            ids = np.asarray([enc.ids], dtype=np.int64)
            hidden, mid = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
            out.append((hidden, mid[0]))
        return out

    def high(self, hidden: np.ndarray, mid: np.ndarray) -> np.ndarray:
        """One text's embedding from its `low` output."""
        feed = dict(zip(self._high_inputs, (hidden, np.ones(hidden.shape[:2], dtype=np.int64), mid[None, :])))
        return self.high_session.run(["embedding"], feed)[0][0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, (hidden, mid) in enumerate(self.low(texts)):
            out[i] = self.high(hidden, mid)
        return out
