"""Every rendered object against a schema, strictly (unknown fields fail): core types with the
Kubernetes schemas of kubernetes-validate, the RayService with a schema of KubeRay's ray.io/v1
CRD and the PodMonitor with one of the Prometheus Operator's (tests/data/k8s/)."""
from __future__ import annotations

import copy
import json

import jsonschema
import kubernetes_validate
import pytest

from tests.k8s.conftest import CUSTOM_KINDS, DATA, K8S_VERSIONS, VARIANTS, Docs, podmonitor_schema, the


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_objects_validate_strict(renders: dict[str, Docs], variant: str, version: str) -> None:
    checked = 0
    for doc in renders[variant]:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= (5 if variant == "external-deps" else 10)


@pytest.mark.parametrize("variant", ["default", "gpu-all-on"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rayservice_embedded_core_types_validate_strict(renders: dict[str, Docs], variant: str, version: str) -> None:
    """The pod templates and the serve Service inside the RayService are core types: check them
    with the Kubernetes schemas too, as a PodTemplate and a Service."""
    spec = the(renders[variant], "RayService")["spec"]
    cluster = spec["rayClusterConfig"]
    templates = [cluster["headGroupSpec"]["template"]] + [w["template"] for w in cluster["workerGroupSpecs"]]
    for i, tpl in enumerate(templates):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate",
                                      "metadata": {"name": f"t{i}"}, "template": tpl}, version, strict=True)
    svc = {"apiVersion": "v1", "kind": "Service", **spec["serveService"]}
    kubernetes_validate.validate(svc, version, strict=True)


def test_strict_validation_catches_a_bad_object(renders: dict[str, Docs]) -> None:
    bad = copy.deepcopy(the(renders["default"], "Deployment"))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["tcpSocket"]["prot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def rayservice_schema() -> dict:
    return json.loads((DATA / "rayservice.schema.json").read_text())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rayservice_matches_kuberay_schema(renders: dict[str, Docs], variant: str) -> None:
    jsonschema.validate(the(renders[variant], "RayService"), rayservice_schema())


@pytest.mark.parametrize("mutate,why", [
    (lambda s: s["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
     "rayStartParams values are strings"),
    (lambda s: s["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].update({"replica": 1}), "unknown field"),
    (lambda s: s["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].update({"minReplicas": -1}), "negative"),
    (lambda s: s["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].pop("groupName"), "groupName required"),
    (lambda s: s["spec"].update({"serveConfigV2": {"applications": []}}), "serveConfigV2 is a string"),
    (lambda s: s.update({"apiVersion": "ray.io/v1alpha1"}), "ray.io/v1 only"),
])
def test_rayservice_schema_rejects_mistakes(renders: dict[str, Docs], mutate, why: str) -> None:
    doc = copy.deepcopy(the(renders["default"], "RayService"))
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, rayservice_schema())


def test_podmonitor_matches_schema_and_scrapes_ray_and_workers(renders: dict[str, Docs]) -> None:
    docs = renders["all-on"]
    pm = the(docs, "PodMonitor")
    jsonschema.validate(pm, podmonitor_schema())
    selector = pm["spec"]["selector"]["matchLabels"]
    ports = {e["port"] for e in pm["spec"]["podMetricsEndpoints"]}
    assert ports == {"metrics"}

    def selected(labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    cluster = the(docs, "RayService")["spec"]["rayClusterConfig"]
    pods = {"ray-head": cluster["headGroupSpec"]["template"],
            "ray-worker": cluster["workerGroupSpecs"][0]["template"],
            "jobs-worker": the(docs, "Deployment", "chatgate-jobs-worker")["spec"]["template"]}
    expected_port = {"ray-head": 8080, "ray-worker": 8080, "jobs-worker": 9101}
    for name, tpl in pods.items():
        assert selected(tpl["metadata"]["labels"]), f"PodMonitor does not select {name}"
        metrics = [p for c in tpl["spec"]["containers"] for p in c.get("ports", []) if p["name"] == "metrics"]
        assert [p["containerPort"] for p in metrics] == [expected_port[name]], name
    head_params = cluster["headGroupSpec"]["rayStartParams"]
    assert head_params["metrics-export-port"] == "8080"
    assert cluster["workerGroupSpecs"][0]["rayStartParams"]["metrics-export-port"] == "8080"
    # Redis and Postgres pods are not scraped (no metrics port).
    for sts in (d for d in docs if d["kind"] == "StatefulSet"):
        assert not selected(sts["spec"]["template"]["metadata"]["labels"])
