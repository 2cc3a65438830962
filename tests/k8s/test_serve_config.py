"""The RayService's serveConfigV2 is deployments.yaml (plus the profile's and the user's
overrides, merged as documented), a valid Ray Serve config, and made of settings
services/config.py has: `args` and every deployment's `user_config` under today's names."""
from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from services.config import RouterRuntimeConfig, Settings, load_settings
from tests.k8s.conftest import REPO, Docs, chart_values, deployments_yaml, serve_config, values_schema
from tools.k8s.render import CHART, helm_template
from tools.k8s.settings_schema import USER_CONFIGS

# Router: streaming and guard (fail_open moved there from the moderation deployments); args: admission.
USER = {"args": {"generator": {"max_model_len": 4096}, "api": {"admission": {"max_active": 4}}},
        "deployments": {"Generator": {"num_replicas": 2, "ray_actor_options": {"num_gpus": 2}},
                        "Router": {"max_queued_requests": 32,
                                   "user_config": {"streaming": {"mode": "async"}, "guard": {"fail_open": True}}},
                        "InputModeration": {"user_config": {"thresholds": {"hate": 0.3}}}}}


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


def test_chart_copy_of_deployments_yaml_is_identical() -> None:
    assert (CHART / "files" / "deployments.yaml").read_bytes() == (REPO / "deployments.yaml").read_bytes(), (
        "helm/chatgate/files/deployments.yaml differs from deployments.yaml: run python tools/k8s/sync.py")


def test_cpu_serve_config_is_deployments_yaml(renders: dict[str, Docs]) -> None:
    # The CPU profile adds nothing: the rendered config is deployments.yaml, field for field.
    assert chart_values()["profiles"]["cpu"]["serve"] == {"args": {}, "deployments": {}}
    assert serve_config(renders["default"]) == deployments_yaml()


def test_gpu_serve_config_is_deployments_yaml_plus_gpu_overrides(renders: dict[str, Docs]) -> None:
    gpu = chart_values()["profiles"]["gpu"]["serve"]
    got = serve_config(renders["gpu"])
    assert got == expected_serve_config([gpu])
    generator = next(d for d in got["applications"][0]["deployments"] if d["name"] == "Generator")
    assert generator["ray_actor_options"]["num_gpus"] == 1
    assert got["applications"][0]["args"]["generator"]["enforce_eager"] is False  # a false override is kept


def test_user_serve_overrides_merge_over_the_profile() -> None:
    docs = helm_template(values={"profile": "gpu", "serve": USER})
    gpu = chart_values()["profiles"]["gpu"]["serve"]
    got = serve_config(docs)
    assert got == expected_serve_config([gpu, USER])
    gen = next(d for d in got["applications"][0]["deployments"] if d["name"] == "Generator")
    assert gen["num_replicas"] == 2 and gen["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 2}
    router = next(d for d in got["applications"][0]["deployments"] if d["name"] == "Router")
    # One key changed, its neighbours kept from deployments.yaml.
    assert router["user_config"]["guard"]["fail_open"] is True
    assert router["user_config"]["guard"]["moderation_timeout_s"] == 5
    assert router["user_config"]["streaming"]["window_chars"] == 200
    assert got["applications"][0]["args"]["api"]["admission"] == {"max_active": 4, "max_waiting": 16, "max_wait_s": 0.5}


@pytest.mark.parametrize("variant", ["default", "gpu"])
def test_serve_config_is_a_valid_ray_serve_config(renders: dict[str, Docs], variant: str) -> None:
    from ray.serve.schema import ServeDeploySchema

    cfg = ServeDeploySchema.model_validate(serve_config(renders[variant]))
    assert [a.import_path for a in cfg.applications] == ["deployments.builder:build_app"]
    assert cfg.http_options.port == 8000  # the serve Service, the probes and the jobs worker use 8000


def known_names(model: type[BaseModel], values: dict[str, Any], where: str) -> None:
    """Every key is a field of `model` (recursing into nested models). Settings and the Router's
    sections ignore unknown keys, so a stale name would otherwise be dropped without a word."""
    for key, value in values.items():
        assert key in model.model_fields, f"{where}.{key}: no such setting in services/config.py"
        sub = model.model_fields[key].annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            known_names(sub, value, f"{where}.{key}")


@pytest.mark.parametrize("variant", ["default", "gpu", "user"])
def test_args_and_user_configs_are_real_settings(renders: dict[str, Docs], variant: str) -> None:
    docs = helm_template(values={"profile": "gpu", "serve": USER}) if variant == "user" else renders[variant]
    app = serve_config(docs)["applications"][0]
    known_names(Settings, app["args"], "args")
    settings = load_settings(app["args"])  # what deployments/builder.py does at deploy time
    sections = {"Router": settings, "InputModeration": settings.moderation,
                "OutputModeration": settings.moderation, "TemplateResponder": settings.templates}
    with_config = set()
    for d in app["deployments"]:
        if "user_config" not in d:
            continue
        with_config.add(d["name"])
        runtime = USER_CONFIGS[d["name"]]
        applied = runtime.model_validate(d["user_config"]).apply(sections[d["name"]])  # what reconfigure() does
        if runtime is RouterRuntimeConfig:
            for section, fields in d["user_config"].items():
                known_names(type(getattr(settings, section)), fields, f"Router.user_config.{section}")
                assert getattr(applied, section).model_dump(include=set(fields)) == fields
    assert with_config == set(USER_CONFIGS), "a deployment with a reconfigure() lost its user_config (or got one)"
    if variant == "user":
        assert settings.api.admission.max_active == 4 and settings.generator.max_model_len == 4096


def test_values_schema_accepts_deployments_yaml_as_overrides() -> None:
    """The schema the chart checks overrides with is not stricter than the real config."""
    app = deployments_yaml()["applications"][0]
    values = chart_values()
    values["serve"] = {"args": app["args"], "deployments": {d["name"]: d for d in app["deployments"]}}
    jsonschema.validate(values, values_schema())
