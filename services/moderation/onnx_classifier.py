"""The built moderation artifact behind `TextClassifier`: one onnxruntime session, string input."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.moderation.categories import CATEGORIES


class ArtifactError(RuntimeError):
    """The model folder is missing, incomplete or from an incompatible build."""


def _session(path: Path, intra_op_threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(intra_op_threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


# Columns of `scores` that a sub-model's own output also carries, as (output, column). The chat
# path adds only profanity to the semantic scores: fetching `profanity_check` alone runs
# alt-profanity-check's part of the graph, not the n-gram heads it would otherwise compute.
_SUB_OUTPUTS = {"profanity": ("profanity_check", 1)}


class OnnxTextClassifier:
    """Scores texts with the combined ONNX graph (see docs/moderation-model-card.md).

    `score` is thread-safe (onnxruntime's `run` is) and batch-capable; empty/whitespace texts
    score 0 everywhere without touching the model.
    """

    def __init__(self, model_dir: Path, intra_op_threads: int = 1):
        self.model_dir = Path(model_dir)
        manifest_path = self.model_dir / "manifest.json"
        if not manifest_path.is_file():
            raise ArtifactError(
                f"no moderation classifier at {self.model_dir} (manifest.json missing); "
                "build it with `tools/setup.sh classifier`"
            )
        self.manifest = json.loads(manifest_path.read_text())
        cats = tuple(self.manifest.get("categories", ()))
        if cats != CATEGORIES:
            raise ArtifactError(f"artifact categories {cats} differ from services.moderation.CATEGORIES; rebuild it")
        self.categories: tuple[str, ...] = cats
        self._session = _session(self.model_dir / self.manifest["model_file"], intra_op_threads)

    def score_array(self, texts: Sequence[str], categories: Sequence[str] | None = None) -> np.ndarray:
        """[N, len(categories)] float32 scores (all categories by default). Asking only for columns
        that a smaller output carries runs only that output's part of the graph."""
        cats = list(self.categories if categories is None else categories)
        out = np.zeros((len(texts), len(cats)), dtype=np.float32)
        idx = [i for i, t in enumerate(texts) if t and not t.isspace()]
        if idx:
            # whitespace runs -> one space, as in training (the character n-grams see spaces)
            batch = np.array([" ".join(texts[i].split()) for i in idx], dtype=object)
            wanted = [_SUB_OUTPUTS.get(c, ("scores", self.categories.index(c))) for c in cats]
            names = sorted({name for name, _ in wanted})
            got = dict(zip(names, self._session.run(names, {"text": batch})))
            out[idx] = np.stack([got[name][:, col] for name, col in wanted], axis=1)
        return out

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        arr = self.score_array(list(texts))
        cats = self.categories
        return [{c: float(v) for c, v in zip(cats, row)} for row in arr.tolist()]

    def raw_outputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The sub-model outputs (parity tests): profanity_check, hatesonar, heads_logits."""
        names = ["profanity_check", "hatesonar", "heads_logits"]
        res = self._session.run(names, {"text": np.array(list(texts), dtype=object)})
        return dict(zip(names, res))
