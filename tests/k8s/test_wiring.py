"""How the rendered pods are wired to the application: env vars that are real settings of
services/config.py, URLs and ports that meet, probes, profiles, mounted config files, the
Secret and the Grafana dashboard."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.k8s.conftest import REPO, Docs, deployments_yaml, ray_containers, the

# Settings every chatgate container must get (the app's defaults point at localhost).
REQUIRED_SETTINGS = {"CHATGATE_TEMPLATES__REDIS_URL", "CHATGATE_QUEUE__BROKER_URL", "CHATGATE_JOBS__ROUTER_URL",
                     "CHATGATE_AUDIT__DSN", "CHATGATE_GENERATOR__MODEL", "CHATGATE_MODERATION__MODEL_DIR",
                     "CHATGATE_MODERATION__CATEGORIES_FILE"}


def test_env_vars_are_settings_that_exist(renders: dict[str, Docs]) -> None:
    from services.config import Settings

    fields = {f"CHATGATE_{s.upper()}__{f.upper()}"
              for s, info in Settings.model_fields.items()
              for f in info.annotation.model_fields}
    for name, c in ray_containers(renders["all-on"]).items():
        env = {e["name"] for e in c["env"]}
        ours = {e for e in env if e.startswith("CHATGATE_")}
        unknown = ours - fields
        assert not unknown, f"{name}: env vars with no field in services/config.py: {sorted(unknown)}"
        assert REQUIRED_SETTINGS | {"CHATGATE_API__KEYS"} <= env


@pytest.mark.parametrize("variant", ["all-on", "external-deps"])
def test_env_vars_load_as_settings(renders: dict[str, Docs], variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The container env, read by services/config.py itself: values parse, types fit."""
    from services.config import Settings

    for name, c in ray_containers(renders[variant]).items():
        with monkeypatch.context() as m:
            for e in c["env"]:
                if e["name"].startswith("CHATGATE_"):
                    # Secret references get a stand-in of the shape the Secret holds.
                    key = e.get("valueFrom", {}).get("secretKeyRef", {}).get("key")
                    m.setenv(e["name"], e["value"] if key is None else {"dsn": "postgresql://u:p@h/db"}.get(key, "k1"))
            s = Settings()
        assert s.queue.broker_url == s.queue.result_backend and s.queue.broker_url.endswith("/1"), name
        assert s.templates.redis_url.endswith("/0") and s.templates.redis_url[:-2] == s.queue.broker_url[:-2], name
        assert s.audit.dsn == "postgresql://u:p@h/db" and s.api.key_set() == {"k1"}, name
        assert s.queue.metrics_port == 9101, name  # the jobs worker's metrics containerPort (PodMonitor)


def test_router_url_points_at_the_serve_service(renders: dict[str, Docs]) -> None:
    docs = renders["default"]
    svc = the(docs, "RayService")["spec"]["serveService"]
    port = svc["spec"]["ports"][0]["port"]
    env = {e["name"]: e.get("value") for e in ray_containers(docs)["jobs-worker"]["env"]}
    assert env["CHATGATE_JOBS__ROUTER_URL"] == f"http://{svc['metadata']['name']}:{port}"
    ingress = the(renders["all-on"], "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": svc["metadata"]["name"], "port": {"number": port}}


def test_jobs_worker_runs_the_queue_worker(renders: dict[str, Docs]) -> None:
    worker = ray_containers(renders["default"])["jobs-worker"]
    module = worker["command"][-1]
    assert worker["command"] == ["python", "-m", module]
    assert (REPO / (module.replace(".", "/") + ".py")).exists(), module


def test_serve_probes_use_healthz_and_readyz(renders: dict[str, Docs]) -> None:
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


def test_profiles_pick_image_and_resources(renders: dict[str, Docs]) -> None:
    cpu, gpu = ray_containers(renders["default"]), ray_containers(renders["gpu"])
    assert all(c["image"].endswith("-cpu") for c in cpu.values())
    assert all(c["image"].endswith("-gpu") for c in gpu.values())
    assert "nvidia.com/gpu" not in json.dumps(cpu["cpu"]["resources"])
    assert gpu["gpu"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    worker = the(renders["gpu"], "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert any(t.get("key") == "nvidia.com/gpu" for t in worker["template"]["spec"]["tolerations"])


def test_config_maps_carry_the_repo_files(renders: dict[str, Docs]) -> None:
    docs = renders["default"]
    tm = the(docs, "ConfigMap", "chatgate-templates")["data"]["templates.yaml"]
    assert yaml.safe_load(tm) == yaml.safe_load((REPO / "services/templates/templates.yaml").read_text())
    cats = REPO / "services/moderation/categories.yaml"
    cm = the(docs, "ConfigMap", "chatgate-moderation-categories")["data"]["categories.yaml"]
    assert yaml.safe_load(cm) == yaml.safe_load(cats.read_text())
    # Every chatgate container mounts both where the code reads them.
    for name, c in ray_containers(docs).items():
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        # whole-directory mounts (no subPath): an edited ConfigMap reaches running pods
        assert {"/etc/chatgate/templates", "/etc/chatgate/moderation"} <= mounts, name
        assert not any(m.get("subPath") for m in c["volumeMounts"]), name
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["CHATGATE_TEMPLATES__BUILTIN_FILE"] == "/etc/chatgate/templates/templates.yaml"
        assert env["CHATGATE_MODERATION__CATEGORIES_FILE"] == "/etc/chatgate/moderation/categories.yaml"


def test_secret_holds_api_keys_and_dsn(renders: dict[str, Docs]) -> None:
    secret = the(renders["all-on"], "Secret")["stringData"]
    assert secret["api-keys"] == "k1,k2"
    assert re.fullmatch(r"postgresql://chatgate:[A-Za-z0-9]{24}@chatgate-postgres:5432/chatgate", secret["dsn"])
    assert secret["dsn"].split(":")[2].split("@")[0] == secret["postgres-password"]


def test_dashboard_covers_the_pipeline_metrics(renders: dict[str, Docs]) -> None:
    from services.observability.metrics import _SPECS

    dash = json.loads(the(renders["default"], "ConfigMap", "chatgate-dashboard")["data"]["chatgate.json"])
    assert the(renders["default"], "ConfigMap", "chatgate-dashboard")["metadata"]["labels"]["grafana_dashboard"] == "1"
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for needed in ("stage latency", "time to first token", "end-to-end", "flags per category", "queue depth"):
        assert needed in titles
    used = set(re.findall(r"chatgate_[a-z_]+", exprs))
    worker_metrics = {m for m in used if m.startswith("chatgate_worker_")}
    # The Celery worker's metrics (services/queue, since the queue plumbing left services/jobs).
    worker_source = (REPO / "services/queue/metrics.py").read_text()
    assert worker_metrics and all(f'"{m}"' in worker_source for m in worker_metrics), worker_metrics
    app_metrics = {m.removesuffix("_bucket") for m in used - worker_metrics}
    assert app_metrics <= set(_SPECS), f"dashboard uses metrics the app does not export: {app_metrics - set(_SPECS)}"
    assert {"chatgate_stage_latency_seconds", "chatgate_time_to_first_token_seconds",
            "chatgate_request_latency_seconds", "chatgate_moderation_flags_total"} <= app_metrics
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
