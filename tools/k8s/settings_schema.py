"""JSON schema (draft-07) of the chatgate settings a chart user may override, read off the typed
models in services/config.py.

tools/k8s/sync.py writes it into helm/chatgate/values.schema.json (`definitions`), so
`helm install` refuses a setting services/config.py does not have (a stale or misspelt name, a
wrong type) before anything reaches the cluster. Without it, a stale name in `serve.args` or in a
Router `user_config` section would be dropped silently: those models ignore unknown keys.
"""
from __future__ import annotations

import typing
from pathlib import PurePath
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel

from services.config import (
    ModerationRuntimeConfig, RouterRuntimeConfig, Settings, TemplateRuntimeConfig,
)

# The Serve deployment (deployments.yaml name) -> the model its reconfigure() validates user_config with.
USER_CONFIGS: dict[str, type[BaseModel]] = {
    "Router": RouterRuntimeConfig,
    "InputModeration": ModerationRuntimeConfig,
    "OutputModeration": ModerationRuntimeConfig,
    "TemplateResponder": TemplateRuntimeConfig,
}
_BOUNDS = ((Ge, "ge", "minimum"), (Gt, "gt", "exclusiveMinimum"), (Le, "le", "maximum"), (Lt, "lt", "exclusiveMaximum"))


def type_schema(annotation: Any, metadata: list[Any] = ()) -> dict[str, Any]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        out: dict[str, Any] = {"enum": list(args)}
    elif origin is typing.Union or type(annotation).__name__ == "UnionType":
        out = {"anyOf": [type_schema(a) for a in args]}
    elif origin in (list, tuple, set, frozenset):
        out = {"type": "array", "items": type_schema(args[0]) if args else {}}
    elif origin is dict:
        out = {"type": "object"}
        if args and args[1] is not Any:
            out["additionalProperties"] = type_schema(args[1])
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        out = model_schema(annotation)
    elif annotation is bool:  # before int: bool is an int in Python, not in JSON schema
        out = {"type": "boolean"}
    elif annotation is int:
        out = {"type": "integer"}
    elif annotation is float:
        out = {"type": "number"}
    elif annotation is str or (isinstance(annotation, type) and issubclass(annotation, PurePath)):
        out = {"type": "string"}
    elif annotation is Any:
        out = {}
    elif annotation is type(None):  # the None of an optional setting
        out = {"type": "null"}
    else:
        raise TypeError(f"no JSON schema for {annotation!r}: extend tools/k8s/settings_schema.py")
    for m in metadata:
        for cls, attr, key in _BOUNDS:
            if isinstance(m, cls):
                out[key] = getattr(m, attr)
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "properties": {name: type_schema(f.annotation, f.metadata) for name, f in model.model_fields.items()}}


def router_schema() -> dict[str, Any]:
    # RouterRuntimeConfig's fields are plain dicts holding the fields of the Settings section of the
    # same name (RouterRuntimeConfig.apply): type them as that section.
    out = model_schema(RouterRuntimeConfig)
    out["properties"] = {name: model_schema(Settings.model_fields[name].annotation)
                         for name in RouterRuntimeConfig.model_fields}
    return out


def definitions() -> dict[str, Any]:
    """values.schema.json `definitions`: serve.args and serve.deployments.<Name>.user_config."""
    runtime = {cls.__name__: (router_schema() if cls is RouterRuntimeConfig else model_schema(cls))
               for cls in dict.fromkeys(USER_CONFIGS.values())}
    settings = model_schema(Settings)
    settings["description"] = ("Deep-merged over deployments.yaml applications[0].args: the sections and "
                               "fields of Settings in services/config.py.")
    deployments = {
        "type": "object",
        "description": "Per Serve deployment name, deep-merged over its deployments.yaml entry; user_config "
                       "is checked against the deployment's run-time config in services/config.py.",
        "properties": {name: {"type": "object", "properties": {"user_config": {"$ref": f"#/definitions/{cls.__name__}"}}}
                       for name, cls in USER_CONFIGS.items()},
        "additionalProperties": {"type": "object"},
    }
    return {"Settings": settings, "serveDeployments": deployments, **runtime}
