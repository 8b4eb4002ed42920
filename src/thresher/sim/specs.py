"""The job spec a scenario's job submits, written as a submitter would write it, and what its layers
run with once the server took it.

A field a scenario layer sets is the layer's own. One it leaves out is left out of the spec when the
layer's service gives it, so that the server's own rule (`model/services.apply_service`, applied by
`submit.check_spec` as the submit route applies it) fills it in field by field, the resources figure
by figure; otherwise the scenario's default is written, so a scenario without services submits what
it always did. The simulator then books and times attempts from the checked layers (`Submitted`),
not from the scenario: a service's cores, GPUs, licences and timeout count as on the farm."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from thresher.model.checked import CheckedJob
from thresher.model.services import RESOURCE_FIELDS, ServiceDefaults
from thresher.sim.scenario import Job, Layer

# The scenario layer's fields a service may give, besides the resources (`model.services.SERVICE_FIELDS`).
_SERVICE_GIVES = ("tags", "pools", "limits", "retries")


def layer_spec(layer: Layer, services: Mapping[str, ServiceDefaults]) -> dict[str, Any]:
    """One layer of the spec: what it sets, and the scenario's defaults where its service gives nothing."""
    given = layer.model_fields_set
    service = services.get(layer.service) if layer.service is not None else None
    gives = service.stored() if service is not None else {}
    resources = {name: getattr(layer, name) for name in RESOURCE_FIELDS
                 if name in given or name not in gives.get("resources", {})}
    spec: dict[str, Any] = {"name": layer.name, "frames": f"1-{layer.frames}" if layer.frames > 1 else "1",
                            "chunk": layer.chunk, "depends_on": layer.depends_on, "resources": resources,
                            "args": {"command": ["true"]}}
    spec.update((name, getattr(layer, name)) for name in _SERVICE_GIVES if name in given or name not in gives)
    if layer.blocklist_after:
        spec["blocklist_after"] = layer.blocklist_after
    if layer.service is not None:
        spec["service"] = layer.service
    return spec


def job_spec(job: Job, name: str, depends_on: list[int], services: Mapping[str, ServiceDefaults]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "project": job.project, "priority": job.priority, "depends_on": depends_on,
                            "layers": [layer_spec(layer, services) for layer in job.layers]}
    if job.folder:
        spec["folder"] = job.folder
    return spec


@dataclass(frozen=True)
class Submitted:
    """What a layer's tasks run with as the server stored them (its own values or its service's)."""

    cores: int
    gpus: int
    limits: dict[str, int]
    timeout_s: float | None


def submitted(checked: CheckedJob) -> dict[str, Submitted]:
    """Each layer's figures by name, from the checked spec the job was created from."""
    return {c.spec.name: Submitted(c.spec.resources.cores, c.spec.resources.gpus, dict(c.spec.limits), c.spec.timeout)
            for c in checked.layers}
