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


# The categories the lexical graph emits, as (output, column): alt-profanity-check's predict_proba.
# The semantic stage scores every category; the Scanner averages this column into its profanity.
_OUTPUTS = {"profanity": ("profanity_check", 1)}


class OnnxTextClassifier:
    """The artefact's lexical model (model.onnx, see docs/moderation-model-card.md) behind
    `TextClassifier`: one onnxruntime session, string input, the categories in `_OUTPUTS`.

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
        self._session = _session(self.model_dir / self.manifest["model_file"], intra_op_threads)
        outputs = {o.name for o in self._session.get_outputs()}
        if not {name for name, _ in _OUTPUTS.values()} <= outputs:
            raise ArtifactError(f"{self.model_dir / self.manifest['model_file']} lacks {sorted(_OUTPUTS)}; rebuild it")
        self.categories: tuple[str, ...] = tuple(_OUTPUTS)

    def score_array(self, texts: Sequence[str], categories: Sequence[str] | None = None) -> np.ndarray:
        """[N, len(categories)] float32 scores (all of `self.categories` by default)."""
        cats = list(self.categories if categories is None else categories)
        unknown = [c for c in cats if c not in _OUTPUTS]
        if unknown:
            raise ValueError(f"the lexical model does not score {unknown}; it scores {list(self.categories)}")
        out = np.zeros((len(texts), len(cats)), dtype=np.float32)
        idx = [i for i, t in enumerate(texts) if t and not t.isspace()]
        if idx and cats:
            # whitespace runs -> one space, as alt-profanity-check's training text had
            batch = np.array([" ".join(texts[i].split()) for i in idx], dtype=object)
            wanted = [_OUTPUTS[c] for c in cats]
            names = sorted({name for name, _ in wanted})
            got = dict(zip(names, self._session.run(names, {"text": batch})))
            out[idx] = np.stack([got[name][:, col] for name, col in wanted], axis=1)
        return out

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        arr = self.score_array(list(texts))
        cats = self.categories
        return [{c: float(v) for c, v in zip(cats, row)} for row in arr.tolist()]

    def raw_outputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """alt-profanity-check's predict_proba as the graph computes it (parity tests)."""
        res = self._session.run(["profanity_check"], {"text": np.array(list(texts), dtype=object)})
        return {"profanity_check": res[0]}
