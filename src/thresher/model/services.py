"""Services: named layer defaults (`maya`, `nuke`, `blender-gpu`) that admins keep, and how a layer takes them.

A service says what a layer of that kind usually needs (resources, tags, pools, licence limits, timeout,
retries), so submitters need not repeat it. A layer names its service, or its template's
`default_service` applies when a service of that name exists; the layer's own values win, field by
field (and within `resources`, cores, memory and GPUs each on its own). What the submitter set is what
pydantic saw (`model_fields_set`), so a layer that writes the default value itself (`retries: 2`) keeps it.

The defaults are applied once, at submit: the layer's rows hold the values, so changing or removing a
service later changes no job already submitted. Pure: the server reads the services and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from thresher.model.problems import Problem, problem
from thresher.model.spec import (
    Cores,
    Gpus,
    LayerSpec,
    LimitUnits,
    MemoryMb,
    Pools,
    Resources,
    Retries,
    Tags,
    Timeout,
)
from thresher.templates import UnknownTemplate, get_template

#: The layer fields a service may set, in the order they are shown.
SERVICE_FIELDS = ("resources", "tags", "pools", "limits", "timeout", "retries")
RESOURCE_FIELDS = ("cores", "memory_mb", "gpus")


class ServiceResources(Resources):
    """A service's resources: each figure optional (only those given apply), checked as a layer's
    (`memory: '8G'` sets `memory_mb`, as in a layer)."""

    cores: Cores | None = None  # type: ignore[assignment]
    memory_mb: MemoryMb | None = None  # type: ignore[assignment]
    gpus: Gpus | None = None  # type: ignore[assignment]


class ServiceDefaults(BaseModel):
    """What a service gives the layers that name it; every field optional, checked as the layer's own
    (the same types and validators of `model/spec.py`). `resources` gives only the figures set in it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resources: ServiceResources | None = Field(None, description="cores, memory_mb (or memory: '8G'), gpus; "
                                                                 "only those given apply")
    tags: Tags | None = None
    pools: Pools | None = None
    limits: LimitUnits | None = Field(None, description="licence limits each task consumes, name -> units")
    timeout: Timeout | None = Field(None, description="seconds")
    retries: Retries | None = None

    def stored(self) -> dict[str, Any]:
        """The JSON a `services.defaults` column holds: only what was given (resources likewise)."""
        out: dict[str, Any] = {}
        for name in SERVICE_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, ServiceResources):
                value = {key: getattr(value, key) for key in RESOURCE_FIELDS if getattr(value, key) is not None}
                if not value:
                    continue
            out[name] = value
        return out


def merge_defaults(old: ServiceDefaults, new: ServiceDefaults, clear: frozenset[str] = frozenset()) -> ServiceDefaults:
    """A service's defaults changed: the fields given in `new` replace those of `old` (the resources
    figure by figure), those named in `clear` go (`resources.gpus` clears one figure)."""
    merged = old.stored()
    for name, value in new.stored().items():
        merged[name] = {**merged.get("resources", {}), **value} if name == "resources" else value
    for name in clear:
        if name.startswith("resources."):
            merged.get("resources", {}).pop(name.split(".", 1)[1], None)
        else:
            merged.pop(name, None)
    if not merged.get("resources", True):
        merged.pop("resources")
    return ServiceDefaults.model_validate(merged)


def apply_service(layer: LayerSpec, name: str, defaults: ServiceDefaults) -> LayerSpec:
    """The layer with the service's value for each field it did not set itself, naming the service."""
    given = layer.model_fields_set
    update: dict[str, Any] = {"service": name}
    for field in SERVICE_FIELDS:
        value = getattr(defaults, field)
        if value is None:
            continue
        if field == "resources":
            mine = layer.resources.model_fields_set if "resources" in given else set()
            figures = {key: getattr(value, key) for key in RESOURCE_FIELDS
                       if getattr(value, key) is not None and key not in mine}
            if figures:
                update["resources"] = layer.resources.model_copy(update=figures)
        elif field not in given:
            update[field] = value.copy() if isinstance(value, (list, dict)) else value
    return layer.model_copy(update=update)


def service_for(layer: LayerSpec, template_default: str | None, known: Mapping[str, ServiceDefaults]) -> str | None:
    """The service a layer takes: the one it names (known or not: the caller refuses an unknown one),
    else its template's default service when such a service exists, else none."""
    if layer.service is not None:
        return layer.service
    return template_default if template_default is not None and template_default in known else None


def with_service(index: int, layer: LayerSpec, known: Mapping[str, ServiceDefaults]) -> tuple[LayerSpec, list[Problem]]:
    """Layer `index` with its service's defaults applied, or a problem at its `service` field when it
    names a service no admin made."""
    try:
        template_default = get_template(layer.template).default_service
    except UnknownTemplate:  # reported at the layer's template by its check
        template_default = None
    name = service_for(layer, template_default, known)
    if name is None:
        return layer, []
    defaults = known.get(name)
    if defaults is None:
        return layer, [problem(("layers", index, "service"), (
            f"no service named {name!r} (known: {', '.join(sorted(known)) or 'none'}; "
            f"an admin adds one: thresher service add {name} --cores N)"))]
    return apply_service(layer, name, defaults), []
