"""The semantic stage's classification heads in numpy (weights from heads.npz), and the score
calibration that puts every category's cross-validated cut at 0.5.

Calibration: a piecewise-linear, monotone map [0, cut] -> [0, 0.5], [cut, 1] -> [0.5, 1], so
categories.yaml keeps one threshold (0.5) whatever cut the build chose, and scores of the semantic
and lexical stages can be combined by max.
"""
from __future__ import annotations

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def mlp_probs(w: dict, x: np.ndarray) -> np.ndarray:
    h = np.maximum(x @ w["w1"] + w["b1"], 0.0)
    return _sigmoid(h @ w["w2"] + w["b2"]).astype(np.float32)


def calibrate(p: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    cuts = np.clip(cuts, 1e-3, 1 - 1e-3)
    low = 0.5 * p / cuts
    high = 0.5 + 0.5 * (p - cuts) / (1.0 - cuts)
    return np.where(p < cuts, low, high).astype(np.float32)


def load_heads(path) -> dict[str, dict]:
    """heads.npz -> {"text": {w1, b1, w2, b2, cuts}, "answer": {...}}."""
    data = np.load(path)
    out: dict[str, dict] = {}
    for key in data.files:
        head, name = key.split(".", 1)
        out.setdefault(head, {})[name] = data[key].astype(np.float32)
    return out


def save_heads(path, heads: dict[str, dict]) -> None:
    np.savez(path, **{f"{h}.{k}": np.asarray(v, dtype=np.float32) for h, d in heads.items() for k, v in d.items()})
