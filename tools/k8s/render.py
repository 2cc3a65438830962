"""Render the Helm chart offline and parse the result.

    from tools.k8s.render import helm_template
    docs = helm_template(values={"profile": "gpu"})            # list of dicts
    proc = helm_template_raw(["--set", "profile=nope"])      # CompletedProcess (for failures)
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tools.k8s.get_helm import ensure

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "chatgate"
RELEASE = "chatgate"
# Labels that only make sense for a Helm release; dropped from the plain manifests in k8s/.
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")


def helm() -> Path:
    return ensure() / "helm"


def kubectl() -> Path:
    return ensure() / "kubectl"


def helm_template_raw(args: list[str] = (), values: dict[str, Any] | None = None,
                      chart: Path = CHART, release: str = RELEASE) -> subprocess.CompletedProcess:
    cmd = [str(helm()), "template", release, str(chart), *args]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        if values is not None:
            json.dump(values, f)  # JSON is YAML
            f.flush()
            cmd += ["-f", f.name]
        return subprocess.run(cmd, capture_output=True, text=True)


def parse(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def helm_template(args: list[str] = (), values: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    proc = helm_template_raw(args, values, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"helm template failed:\n{proc.stderr}")
    return parse(proc.stdout)


def by_kind(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def strip_helm_labels(obj: Any) -> Any:
    """Drop Helm-only labels everywhere (object, pod templates, Service metadata...)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "labels" and isinstance(v, dict):
                v = {lk: lv for lk, lv in v.items() if lk not in HELM_ONLY_LABELS}
            out[k] = strip_helm_labels(v)
        return out
    if isinstance(obj, list):
        return [strip_helm_labels(v) for v in obj]
    return obj
