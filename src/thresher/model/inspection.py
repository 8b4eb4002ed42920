"""Checking a submitted spec without the database, in one walk: every problem at once, and what it needs.

A spec is read once: the raw document (nesting, NUL characters), the models (`JobSpec`), then each layer
against its template (`layer_check`). What comes out is the checked job, ready to be written, every
problem found with its field, and what the spec needs of the farm (`FarmNeeds`), which the server checks
against the database (`thresher.server.submit`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from thresher.model.checked import CheckedJob, CheckedLayer, FarmNeeds, LayerNeeds
from thresher.model.document import document_problems
from thresher.model.layer_check import check_layer
from thresher.model.layer_graph import layer_graph_problems
from thresher.model.paths import PathRule
from thresher.model.problems import Problem, field_errors, merge_problems, problem
from thresher.model.services import ServiceDefaults, with_service
from thresher.model.spec import MAX_ID, JobSpec, LayerSpec, same_job_layer
from thresher.templates import UnknownTemplate, get_template

MAX_TASKS_PER_JOB = 2_000_000


class Inspection(NamedTuple):
    """What `inspect_spec` found: the checked job (None when the spec does not even parse), every
    problem, and what the spec (or the parts of it that parse) needs of the farm."""

    job: CheckedJob | None
    problems: list[Problem]
    needs: FarmNeeds


def inspect_spec(raw: Any, services: Mapping[str, ServiceDefaults] | None = None) -> Inspection:
    """Check a raw spec without the database.

    A spec that fails validation is still looked at layer by layer, so a submitter hears in one answer
    about a bad field in one layer and an unknown template or dependency in another. `services` are the
    farm's services (the server reads them): each layer takes its service's defaults before it is
    checked (`model/services.py`), and one naming an unknown service is refused at its field. Without
    them (a check that has no farm) services are left as named."""
    if not isinstance(raw, dict):
        return Inspection(None, [problem((), "a job spec must be a JSON object")], FarmNeeds())
    too_deep, problems = document_problems(raw)
    if too_deep:
        return Inspection(None, [too_deep], FarmNeeds())
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as exc:
        # a NUL is already reported at its field; pydantic's "no control characters" would say it twice
        nul_fields = {p["field"] for p in problems}
        problems += [p for p in field_errors(exc) if p["field"] not in nul_fields]
        more, needs = _inspect_raw_layers(raw, services)
        return Inspection(None, merge_problems(problems, more), needs)
    if services is not None:
        spec = _with_services(spec, services, problems)
    job = _check_layers(spec, problems)
    return Inspection(job, merge_problems(problems, []), job.needs)


def _with_services(spec: JobSpec, services: Mapping[str, ServiceDefaults], problems: list[Problem]) -> JobSpec:
    """The spec whose layers took their services' defaults (what the job's rows and stored spec hold)."""
    layers = []
    for i, layer in enumerate(spec.layers):
        layer, found = with_service(i, layer, services)
        layers.append(layer)
        problems.extend(found)
    return spec.model_copy(update={"layers": layers})


def _check_layers(spec: JobSpec, problems: list[Problem]) -> CheckedJob:
    """Every layer of a valid spec against its template, adding what is wrong to `problems`; tiled
    layers get their stitch layer, which the layers that depend on them wait for instead."""
    job = CheckedJob(spec, [], needs=FarmNeeds(spec.job_ids(), project=spec.project))
    renamed: dict[str, str] = {}  # tiled layer -> its stitch layer
    names = {layer.name for layer in spec.layers}
    for i, layer in enumerate(spec.layers):
        found = check_layer(i, layer, names, spec.path_mapping)
        problems.extend(found.problems)
        job.needs.layers.append(LayerNeeds.of(f"layers.{i}.resources", layer))
        if found.layer is None:
            continue
        job.warnings.extend(found.warnings)
        job.layers.append(found.layer)
        if found.stitch is not None:
            renamed[layer.name] = found.stitch.spec.name
            job.layers.append(found.stitch)
            job.needs.layers.append(LayerNeeds.of(f"layers.{i}.tiles", found.stitch.spec))
    if renamed:
        job.layers = [_waiting_for_stitches(item, renamed) for item in job.layers]
    if job.task_count > MAX_TASKS_PER_JOB:
        problems.append(problem(("layers",), f"the job would have {job.task_count:,} tasks; the limit is "
                                             f"{MAX_TASKS_PER_JOB:,} (use a larger chunk)"))
    return job


def _waiting_for_stitches(item: CheckedLayer, renamed: dict[str, str]) -> CheckedLayer:
    """A layer that depends on tiled layers waits for their stitch layers (the whole frames) instead."""
    if item.spec.template == "stitch" or not any(name in renamed for name in item.spec.layer_names()):
        return item
    deps = [renamed.get(dep, dep) if isinstance(dep, str)
            else dep.model_copy(update={"layer": renamed.get(dep.layer or "", dep.layer)}) if same_job_layer(dep)
            else dep for dep in item.spec.depends_on]
    return CheckedLayer(item.spec.model_copy(update={"depends_on": deps}), item.template, item.args,
                        item.task_count, item.parts)


def _inspect_raw_layers(raw: dict[str, Any],
                        services: Mapping[str, ServiceDefaults] | None) -> tuple[list[Problem], FarmNeeds]:
    """For a spec that failed validation: the problems of its other layers (templates, arguments,
    dependencies between layers) and what the parts that did validate need of the farm."""
    depends_on = raw.get("depends_on")
    needs = FarmNeeds([d for d in depends_on if isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_ID]
                      if isinstance(depends_on, list) else [])
    project = raw.get("project", "default")
    needs.project = project.strip() if isinstance(project, str) and project.strip() else None
    layers = raw.get("layers")
    if not isinstance(layers, list):
        return [], needs
    problems = [problem(loc, message) for loc, message, _ in layer_graph_problems(
        [(item.get("name"), item.get("depends_on")) if isinstance(item, dict) else (None, None) for item in layers])]
    try:
        path_mapping = [PathRule.model_validate(rule) for rule in raw.get("path_mapping") or []]
    except (ValidationError, TypeError):
        path_mapping = []
    names = {item["name"].strip() for item in layers if isinstance(item, dict) and isinstance(item.get("name"), str)}
    for i, item in enumerate(layers):
        if not isinstance(item, dict):
            continue
        try:
            layer = LayerSpec.model_validate(item)
        except ValidationError:
            template = item.get("template", "command")
            if isinstance(template, str) and template.strip():
                try:
                    get_template(template.strip())
                except UnknownTemplate as exc:
                    problems.append(problem(("layers", i, "template"), str(exc)))
            continue
        if services is not None:
            layer, found = with_service(i, layer, services)
            problems.extend(found)
        problems.extend(check_layer(i, layer, names, path_mapping).problems)
        needs.layers.append(LayerNeeds.of(f"layers.{i}.resources", layer))
    return problems, needs
