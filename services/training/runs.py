"""Run folders keyed by their inputs, resolution of model references, metrics JSON and plots.

A run lives in `<runs_dir>/<stage>-<key>/` where key hashes the stage config and the fingerprints
of its inputs (base model weights, data wheels, export files): the same inputs reuse a finished
run, a changed input trains a new one. `latest-<stage>` points at the newest finished run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from services.training.data import fingerprint, sha256_file

STAGE_NAMES = ("pretrain", "sft", "reward", "ppo")


def run_dir(runs_root: Path, stage: str, keyed: dict, inputs: dict) -> Path:
    return runs_root / f"{stage}-{fingerprint(stage, keyed, inputs)}"


def is_done(run: Path) -> bool:
    return (run / "metrics.json").is_file() and json.loads((run / "metrics.json").read_text()).get("complete", False)


def resolve_model(ref: str, runs_root: Path) -> Path:
    """A stage name (its latest finished run), a run folder, or a model folder -> the model folder."""
    path = runs_root / f"latest-{ref}" if ref in STAGE_NAMES else Path(ref).expanduser()
    if not path.exists() and (runs_root / ref).exists():
        path = runs_root / ref
    if (path / "model" / "config.json").is_file():
        return (path / "model").resolve()
    if (path / "config.json").is_file():
        return path.resolve()
    hint = f"run `chatgate train {ref}` first" if ref in STAGE_NAMES else "not a run or model folder"
    raise FileNotFoundError(f"no model for {ref!r} ({path}): {hint}")


def model_fingerprint(model_dir: Path) -> str:
    """Hash of the weight and tokenizer files: what a downstream run is keyed by."""
    names = sorted(p.name for p in model_dir.iterdir() if p.suffix in (".safetensors", ".json", ".jinja"))
    return fingerprint([(n, sha256_file(model_dir / n)) for n in names])


def mark_latest(runs_root: Path, stage: str, run: Path) -> None:
    link = runs_root / f"latest-{stage}"
    tmp = runs_root / f".latest-{stage}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.name)
    os.replace(tmp, link)


def write_metrics(run: Path, metrics: dict) -> None:
    tmp = run / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2, default=float))
    os.replace(tmp, run / "metrics.json")


def plot(run: Path, title: str, panels: dict[str, dict[str, list]]) -> Path:
    """One PNG, a panel per metric group; each series is a list of (step, value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items()):
        for label, points in series.items():
            if isinstance(points, list):
                ax.plot([p[0] for p in points], [p[1] for p in points], label=label, marker="." if len(points) < 40 else None)
            else:
                ax.axhline(points, linestyle="--", color="grey", label=label)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    out = run / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
