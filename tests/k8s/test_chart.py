"""The chart as Helm sees it: `helm lint --strict`, what `helm template` renders for each value
set, values that must be refused with a clear message, and the install notes."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.k8s.conftest import CHART, Docs, serve_config, the
from tools.k8s.render import helm, helm_template, helm_template_raw


@pytest.mark.parametrize("args", [[], ["--set", "profile=gpu"], ["--set", "ingress.enabled=true",
                                                                 "--set", "monitoring.podMonitor.enabled=true"]])
def test_helm_lint_strict(args: list[str]) -> None:
    proc = subprocess.run([str(helm()), "lint", "--strict", str(CHART), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


def test_default_render_has_the_whole_system(renders: dict[str, Docs]) -> None:
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


def test_throughput_mode_is_opt_in_on_every_ray_container(renders: dict[str, Docs]) -> None:
    flags = {"RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_HA_PROXY"}
    for variant, expect in (("default", set()), ("all-on", flags)):
        (service,) = [d["spec"]["rayClusterConfig"] for d in renders[variant] if d["kind"] == "RayService"]
        pods = [service["headGroupSpec"]] + service["workerGroupSpecs"]
        for pod in pods:
            for container in pod["template"]["spec"]["containers"]:
                names = {e["name"] for e in container.get("env", [])}
                assert names & flags == expect, (variant, container["name"])


def test_external_dependencies_replace_the_statefulsets(renders: dict[str, Docs]) -> None:
    docs = renders["external-deps"]
    assert not [d for d in docs if d["kind"] == "StatefulSet"]
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    worker = the(docs, "Deployment", "chatgate-jobs-worker")
    assert worker["spec"]["replicas"] == 3
    env = {e["name"]: e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CHATGATE_TEMPLATES__REDIS_URL"]["value"] == "redis://redis.infra:6379/0"
    assert env["CHATGATE_QUEUE__BROKER_URL"]["value"] == "redis://redis.infra:6379/1"
    assert env["CHATGATE_QUEUE__RESULT_BACKEND"]["value"] == "redis://redis.infra:6379/1"
    secret = the(docs, "Secret")
    assert secret["stringData"]["dsn"] == "postgresql://u:p@pg.infra:5432/chatgate"
    assert "postgres-password" not in secret["stringData"]


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
    # Run-time settings under the names services/config.py knows: fail_open is the Router's guard's
    # now (a moderation deployment refuses it), streaming/guard keys and args sections are checked.
    (["--set", "serve.deployments.InputModeration.user_config.fail_open=true"],
     r"/serve/deployments/InputModeration/user_config.*additional properties 'fail_open' not allowed"),
    (["--set", "serve.deployments.Router.user_config.guard.fail_opne=true"],
     r"/serve/deployments/Router/user_config/guard.*additional properties 'fail_opne' not allowed"),
    (["--set", "serve.deployments.Router.user_config.streaming.mode=later"],
     r"/serve/deployments/Router/user_config/streaming/mode.*must be one of 'buffered', 'async'"),
    (["--set", "serve.args.genrator.max_model_len=4096"], r"/serve/args.*additional properties 'genrator' not allowed"),
    (["--set", "profiles.gpu.serve.deployments.OutputModeration.user_config.thresholds.hate=high"],
     r"/profiles/gpu/serve/deployments/OutputModeration/user_config/thresholds/hate.*want number"),
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


def test_notes_render_offline() -> None:
    proc = subprocess.run([str(helm()), "install", "chatgate", str(CHART), "--dry-run=client",
                           "--set", "apiKeys.keys={k1}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "kubectl port-forward -n default svc/chatgate-router 8000:8000" in notes
    # no model in the example: the served one (SmolLM2 or a promoted trained model) answers by default
    assert '{"messages": [{"role": "user", "content": "Hello"}]}' in notes and "Authorization: Bearer" in notes
    assert "KubeRay operator" in notes
