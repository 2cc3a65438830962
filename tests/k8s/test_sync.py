"""The copies and generated files stay in step with the chart: tools/k8s/sync.py, the kustomize
tree in k8s/ (== the chart, object for object), the Dockerfile the chart's image comes from,
the documented user overlay, and the offline helm/kubectl of tools/k8s/get_helm.py."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.k8s.conftest import REPO, chart_values, kustomize, podmonitor_schema, ray_containers, the
from tools.k8s import get_helm, sync
from tools.k8s.render import by_kind, helm_template, strip_helm_labels


def test_chart_files_and_k8s_are_in_sync() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "tools/k8s/sync.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("overlay,values", [("cpu", sync.PLAIN_VALUES), ("gpu", sync.GPU_VALUES)])
def test_kustomize_overlays_equal_the_chart(overlay: str, values: dict[str, Any]) -> None:
    built = by_kind(kustomize(REPO / "k8s" / "overlays" / overlay))
    chart = by_kind([strip_helm_labels(d) for d in helm_template(values=values) if d["kind"] != "PodMonitor"])
    assert built.keys() == chart.keys()
    for key in chart:
        assert built[key] == chart[key], f"k8s/overlays/{overlay}: {key} differs from the chart"


def test_kustomize_podmonitor_component_builds(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(REPO / "k8s/overlays/cpu", tmp_path)],
        "components": [os.path.relpath(REPO / "k8s/components/podmonitor", tmp_path)]}))
    docs = kustomize(tmp_path)
    jsonschema.validate(the(docs, "PodMonitor"), podmonitor_schema())


def test_json_patch_generator() -> None:
    old = {"a": {"x/y": 1, "gone": 2}, "l": [1, 2], "s": "v"}
    new = {"a": {"x/y": 3, "new": 4}, "l": [1, 5, 6], "s": "v"}
    ops = sync.json_patch(old, new)
    assert ops == [{"op": "remove", "path": "/a/gone"}, {"op": "replace", "path": "/a/x~1y", "value": 3},
                   {"op": "add", "path": "/a/new", "value": 4}, {"op": "replace", "path": "/l", "value": [1, 5, 6]}]


def test_dockerfile_builds_what_the_chart_expects() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG PROFILE=cpu$", text, re.M)
    for step in ("tools/setup.sh venv", "tools/setup.sh model", "tools/setup.sh classifier"):
        assert step in text
    cache = re.search(r"CHATGATE_CACHE=(\S+)", text).group(1)
    values = chart_values()
    assert values["generator"]["model"].startswith(cache + "/")
    assert values["moderation"]["modelDir"].startswith(cache + "/")
    assert re.search(r"^WORKDIR /app$", text, re.M)  # the categories ConfigMap is mounted under /app
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for needed in ("pyproject.toml", "deployments.yaml", "services", "deployments", "tools"):
        assert needed not in ignored and (REPO / needed).exists(), needed
    suffixes = {p["imageTagSuffix"] for p in values["profiles"].values()}
    assert suffixes == {"cpu", "gpu"}  # = the PROFILE build arg values


def test_get_helm_is_cached_and_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_helm.ensure()

    def no_network(*a: Any, **k: Any) -> None:
        raise AssertionError("get_helm tried to download although the binaries are cached")

    with monkeypatch.context() as m:
        m.setattr(get_helm.subprocess, "run", no_network)
        assert get_helm.ensure() == first
    assert (first / "layer.sha256").read_text().strip() == get_helm.EXPECTED_LAYER_SHA256
    out = subprocess.check_output([str(first / "helm"), "version", "--short"], text=True)
    assert out.startswith("v4.")


def test_documented_user_overlay_builds(tmp_path: Path) -> None:
    """The `my-chatgate` overlay from docs/kubernetes.md: other registry, real Secret, PodMonitor."""
    doc = (REPO / "docs" / "kubernetes.md").read_text()
    block = re.search(r"```yaml\n# my-chatgate/kustomization.yaml\n(.*?)```", doc, re.S).group(1)
    k = yaml.safe_load(block)
    k["resources"] = [os.path.relpath(REPO / "k8s/overlays/gpu", tmp_path)]
    k["components"] = [os.path.relpath(REPO / "k8s/components/podmonitor", tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(k))
    docs = kustomize(tmp_path)
    assert {d["metadata"].get("namespace") for d in docs} == {"chatgate"}
    images = [c["image"] for name, c in ray_containers(docs).items()]
    assert images and all(i == "ghcr.io/YOUR_ORG/chatgate:0.1.0-gpu" for i in images)
    secret = the(docs, "Secret")
    assert "stringData" not in secret and "change-me" not in json.dumps(secret)
    assert set(secret["data"]) == {"api-keys", "postgres-password", "dsn"}
    the(docs, "PodMonitor")
