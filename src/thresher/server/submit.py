"""Turning a submitted spec into a job, its layers and its tasks, all in one transaction.

Everything is checked before the first row is written (spec, template arguments, frames, dependencies,
whether any node could ever run each layer), so a refused job leaves nothing behind.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, insert, select

from thresher.model.frames import Chunk, chunk_count, frame_count, is_arithmetic, iter_chunk_fields
from thresher.model.paths import PathRule
from thresher.model.spec import (
    MAX_ID,
    JobSpec,
    LayerSpec,
    Resources,
    layer_graph_problems,
    nesting_problem,
    nul_problems,
)
from thresher.model.states import JobState, TaskState
from thresher.server.clock import utcnow
from thresher.server.db.bulk import insert_tasks, part_json
from thresher.server.db.tables import jobs, layers, nodes, tag_sets
from thresher.server.dispatch import forget_tag_keys
from thresher.server.errors import BadInput, field_errors
from thresher.templates import Template, UnknownTemplate, get_template
from thresher.templates.base import PendingArgs, Target, TemplateError

MAX_TASKS_PER_JOB = 2_000_000


@dataclass
class CheckedLayer:
    spec: LayerSpec
    template: Template
    args: BaseModel
    task_count: int
    parts: list[dict[str, Any] | None] = field(default_factory=lambda: [None])

    def chunks(self) -> Iterator[Chunk]:
        """The layer's tasks in order: each chunk of frames once per part (tile or wedge value)."""
        for index, fields, part in self._numbered(self.parts):
            yield Chunk(index, *fields, part=part)

    def task_rows(self) -> Iterator[tuple[int, str, int, int, int, int, str | None]]:
        """`chunks` as the rows `bulk.insert_tasks` writes, built without an object per task."""
        for index, fields, part in self._numbered([part_json(part) for part in self.parts]):
            yield (index, *fields, part)

    def _numbered(self, parts: list[Any]) -> Iterator[tuple[int, tuple[str, int, int, int, int], Any]]:
        """(task index, chunk fields, part) for each chunk once per part: the one walk behind both."""
        index = 0
        for fields in iter_chunk_fields(self.spec.frames, self.spec.chunk):
            for part in parts:
                yield index, fields, part
                index += 1


@dataclass
class CheckedJob:
    spec: JobSpec
    layers: list[CheckedLayer]
    warnings: list[str] = field(default_factory=list)


def tag_key(tags: list[str]) -> str:
    return ",".join(sorted(set(tags)))


@dataclass
class FarmNeeds:
    """What a spec asks of the farm, checked against the database: the jobs it waits for, and what
    each layer needs of a node (`(field, resources, tags)`)."""

    depends_on: list[int] = field(default_factory=list)
    layers: list[tuple[str, Resources, list[str]]] = field(default_factory=list)


def check_spec(raw: Any) -> CheckedJob:
    """Validate a raw spec fully; raise BadInput listing every problem with its field."""
    job, problems, _needs = inspect_spec(raw)
    if problems or job is None:
        raise BadInput(problem_detail(problems), problems)
    return job


def check_job(conn: Connection, raw: Any) -> CheckedJob:
    """`check_spec` plus what only the farm can tell (unknown jobs in depends_on, layers no node could
    run), all problems in one answer. This is what a dry run answers."""
    job, problems, needs = inspect_spec(raw)
    problems = merge_problems(problems, farm_problems(conn, needs))
    if problems or job is None:
        raise BadInput(problem_detail(problems), problems)
    return job


def problem_detail(problems: list[dict[str, str]]) -> str:
    fields = {problem["field"].split(".")[0] for problem in problems}
    if fields == {"depends_on"} and all(p["message"].startswith("no job with id") for p in problems):
        return "unknown job in depends_on"
    if problems and all(p["message"].startswith(_NO_NODE) for p in problems):
        return "no node could ever run part of this job"
    return "invalid job spec"


def merge_problems(first: list[dict[str, str]], more: list[dict[str, str]]) -> list[dict[str, str]]:
    """`first` plus the problems of `more` not said already; the job's own fields first, then layer by layer."""
    seen = {(p["field"], p["message"]) for p in first}
    out = list(first)
    for problem in more:
        key = (problem["field"], problem["message"])
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return sorted(out, key=_layer_order)


def _layer_order(problem: dict[str, str]) -> int:
    parts = problem["field"].split(".")
    return int(parts[1]) if len(parts) > 1 and parts[0] == "layers" and parts[1].isdigit() else -1


def inspect_spec(raw: Any) -> tuple[CheckedJob | None, list[dict[str, str]], FarmNeeds]:
    """Check a raw spec without the database: the checked job (None when the spec does not even parse),
    every problem found, and what it needs of the farm.

    A spec that fails validation is still looked at layer by layer, so a submitter hears in one answer
    about a bad field in one layer and an unknown template or dependency in another."""
    if not isinstance(raw, dict):
        return None, [{"field": "(body)", "message": "a job spec must be a JSON object"}], FarmNeeds()
    deep = nesting_problem(raw)
    if deep:
        return None, [deep], FarmNeeds()
    problems = nul_problems(raw)
    nul_fields = {p["field"] for p in problems}
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as exc:
        # a NUL is already reported at its field; pydantic's "no control characters" would say it twice
        problems += [p for p in field_errors(exc) if p["field"] not in nul_fields]
        more, needs = _inspect_raw_layers(raw)
        return None, merge_problems(problems, more), needs
    checked: list[CheckedLayer] = []
    warnings: list[str] = []
    total = 0
    renamed: dict[str, str] = {}  # tiled layer -> its stitch layer, for the layers that depend on it
    names = {layer.name for layer in spec.layers}
    needs = FarmNeeds(list(spec.depends_on))
    for i, layer in enumerate(spec.layers):
        item, stitch, layer_warnings, layer_problems = _check_layer(i, layer, names, spec.path_mapping)
        problems.extend(layer_problems)
        needs.layers.append((f"layers.{i}.resources", layer.resources, layer.tags))
        if item is None:
            continue
        total += item.task_count
        warnings.extend(layer_warnings)
        checked.append(item)
        if stitch is not None:
            renamed[layer.name] = stitch.spec.name
            total += stitch.task_count
            checked.append(stitch)
            needs.layers.append((f"layers.{i}.tiles", stitch.spec.resources, stitch.spec.tags))
    if renamed:
        for n, item in enumerate(checked):
            if item.spec.template != "stitch" and any(dep in renamed for dep in item.spec.depends_on):
                deps = [renamed.get(dep, dep) for dep in item.spec.depends_on]
                checked[n] = CheckedLayer(item.spec.model_copy(update={"depends_on": deps}), item.template,
                                          item.args, item.task_count, item.parts)
    if total > MAX_TASKS_PER_JOB:
        problems.append({"field": "layers", "message": f"the job would have {total:,} tasks; the limit is "
                         f"{MAX_TASKS_PER_JOB:,} (use a larger chunk)"})
    return CheckedJob(spec, checked, warnings), merge_problems(problems, []), needs


def _check_layer(i: int, layer: LayerSpec, names: set[str], path_mapping: list[PathRule]) -> tuple[
        CheckedLayer | None, CheckedLayer | None, list[str], list[dict[str, str]]]:
    """One valid layer spec against its template: (the checked layer, its stitch layer when tiled,
    warnings, problems)."""
    try:
        template = get_template(layer.template)
    except UnknownTemplate as exc:
        return None, None, [], [{"field": f"layers.{i}.template", "message": str(exc)}]
    try:
        args = template.parse_args(layer.args)
    except ValidationError as exc:
        return None, None, [], field_errors(exc, prefix=f"layers.{i}.args")
    if template.whole_range:
        layer = layer.model_copy(update={"chunk": min(frame_count(layer.frames), 1_000_000)})
    if template.ranges_only and not is_arithmetic(layer.frames):
        return None, None, [], [{"field": f"layers.{i}.frames", "message": (
            f"the {template.name} template renders frame ranges only: write the frames as plain ranges "
            "(like 1-100 or 1-100x2, without overlaps, y or :)")}]
    parts: list[dict[str, Any] | None] = [None]
    stitch: CheckedLayer | None = None
    if layer.wedge is not None:
        parts = [{"wedge": value, "wedge_index": n} for n, value in enumerate(layer.wedge)]
    elif layer.tiles is not None:
        stitch, problem = _stitch_layer(i, layer, template, args, names)
        if problem:
            return None, None, [], [problem]
        nx, ny = layer.tiles
        parts = [{"tile": [col, row], "tiles": [nx, ny]} for row in range(ny) for col in range(nx)]
    count = chunk_count(layer.frames, layer.chunk) * len(parts)
    item = CheckedLayer(layer, template, args, count, parts)
    try:
        # the first task; arguments with placeholders (`samples: "{wedge}"`) with every wedge value
        for chunk in itertools.islice(item.chunks(), len(parts) if isinstance(args, PendingArgs) else 1):
            template.build(args, chunk, Target(), path_mapping)
    except (TemplateError, ValidationError, ValueError) as exc:
        return None, None, [], [{"field": f"layers.{i}.args", "message": str(exc)}]
    return item, stitch, [f"layers.{i}: {w}" for w in template.layer_warnings(args, layer)], []


def _inspect_raw_layers(raw: dict[str, Any]) -> tuple[list[dict[str, str]], FarmNeeds]:
    """For a spec that failed validation: the problems of its other layers (templates, arguments,
    dependencies between layers) and what the parts that did validate need of the farm."""
    needs = FarmNeeds([d for d in raw.get("depends_on") or [] if isinstance(d, int) and not isinstance(d, bool)
                       and 1 <= d <= MAX_ID] if isinstance(raw.get("depends_on"), list) else [])
    layers = raw.get("layers")
    if not isinstance(layers, list):
        return [], needs
    problems = layer_graph_problems([(item.get("name"), item.get("depends_on")) if isinstance(item, dict)
                                     else (None, None) for item in layers])
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
                    problems.append({"field": f"layers.{i}.template", "message": str(exc)})
            continue
        problems.extend(_check_layer(i, layer, names, path_mapping)[3])
        needs.layers.append((f"layers.{i}.resources", layer.resources, layer.tags))
    return problems, needs


def _stitch_layer(i: int, layer: LayerSpec, template: Template, args: BaseModel,
                  names: set[str]) -> tuple[CheckedLayer | None, dict[str, str] | None]:
    """The assembly layer of a tiled layer: one stitch task per chunk, after all the tiles."""
    field_name = f"layers.{i}.tiles"
    if not template.tiles:
        return None, {"field": field_name, "message": f"the {template.name} template cannot render tiles"}
    size = template.tile_size(args)
    if size is None:
        return None, {"field": field_name, "message": "tiles need the frame size: give width and height in args"}
    output = template.tile_output(args)
    if not output:
        return None, {"field": field_name, "message": "tiles need an output pattern to stitch the frames into"}
    problem = template.tile_problem(args)
    if problem:
        return None, {"field": f"layers.{i}.{problem[0]}", "message": problem[1]}
    assert layer.tiles is not None
    name = f"{layer.name}-stitch"
    while name in names:
        name += "-"
    names.add(name)
    stitch_template = get_template("stitch")
    stitch_args = stitch_template.parse_args({"output": output, "tiles": list(layer.tiles), "size": list(size)})
    spec = LayerSpec(name=name, template="stitch", args=stitch_args.model_dump(mode="json"), frames=layer.frames,
                     chunk=layer.chunk, tags=layer.tags, retries=layer.retries, depends_on=[layer.name],
                     env=layer.env, cwd=layer.cwd)
    return CheckedLayer(spec, stitch_template, stitch_args, chunk_count(layer.frames, layer.chunk)), None


_NO_NODE = "no node can run this layer"


def farm_problems(conn: Connection, needs: FarmNeeds) -> list[dict[str, str]]:
    """What the database says about a spec: unknown jobs in depends_on, layers no node could run."""
    return dependency_problems(conn, needs.depends_on)[1] + runnable_problems(conn, needs.layers)


def runnable_problems(conn: Connection, needs: list[tuple[str, Resources, list[str]]]) -> list[dict[str, str]]:
    """A layer that no registered node could ever run (when there are nodes at all)."""
    if not needs:
        return []
    rows = conn.execute(select(nodes.c.name, nodes.c.cores, nodes.c.memory_mb, nodes.c.gpus, nodes.c.tags)).all()
    if not rows:
        return []
    problems = []
    for where, need, tags in needs:
        wanted = set(tags)
        fits = [r for r in rows if r.cores >= need.cores and r.memory_mb >= need.memory_mb
                and len(r.gpus or []) >= need.gpus and wanted <= set(r.tags or [])]
        if not fits:
            biggest = max(rows, key=lambda r: (r.cores, r.memory_mb))
            problems.append({"field": where, "message": (
                f"{_NO_NODE} (needs {need.cores} cores, {need.memory_mb} MB, {need.gpus} GPUs"
                + (f", tags {sorted(wanted)}" if wanted else "")
                + f"); the largest node, {biggest.name}, has {biggest.cores} cores and {biggest.memory_mb} MB")})
    return problems


def dependency_problems(conn: Connection, depends_on: list[int]) -> tuple[dict[int, str], list[dict[str, str]]]:
    """The states of the jobs a spec depends on, and a problem for each that does not exist."""
    if not depends_on:
        return {}, []
    found = {r.id: r.state for r in conn.execute(select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(set(depends_on))))}
    return found, [{"field": f"depends_on.{k}", "message": f"no job with id {j}"}
                   for k, j in enumerate(depends_on) if j not in found]


def check_runnable(conn: Connection, job: CheckedJob) -> None:
    """Refuse a layer that no registered node could ever run (when there are nodes at all)."""
    problems = runnable_problems(conn, _layer_needs(job))
    if problems:
        raise BadInput("no node could ever run part of this job", problems)


def _layer_needs(job: CheckedJob) -> list[tuple[str, Resources, list[str]]]:
    index = {layer.name: i for i, layer in enumerate(job.spec.layers)}
    out = []
    for checked in job.layers:
        i = index.get(checked.spec.name)
        if i is not None:
            out.append((f"layers.{i}.resources", checked.spec.resources, checked.spec.tags))
        else:  # the stitch layer of a tiled layer
            tiled = checked.spec.depends_on[0] if checked.spec.depends_on else ""
            out.append((f"layers.{index.get(tiled, 0)}.tiles", checked.spec.resources, checked.spec.tags))
    return out


def check_job_dependencies(conn: Connection, spec: JobSpec) -> dict[int, str]:
    found, problems = dependency_problems(conn, list(spec.depends_on))
    if problems:
        raise BadInput("unknown job in depends_on", problems)
    return found


def create_job(conn: Connection, job: CheckedJob, owner: str) -> int:
    """Insert the job, layers and tasks; returns the new job id."""
    spec = job.spec
    # checked again in the writing transaction: nodes and jobs may have gone since the spec was checked
    dep_states, problems = dependency_problems(conn, list(spec.depends_on))
    problems += runnable_problems(conn, _layer_needs(job))
    if problems:
        raise BadInput(problem_detail(problems), problems)
    jobs_ready = all(state == JobState.SUCCEEDED.value for state in dep_states.values())
    now = utcnow()
    total = sum(layer.task_count for layer in job.layers)
    job_id = conn.execute(insert(jobs).values(
        name=spec.name, owner=spec.owner or owner, project=spec.project, sequence=spec.sequence,
        shot=spec.shot, priority=spec.priority, state=JobState.QUEUED.value if jobs_ready else JobState.WAITING.value,
        paused=False, killed=False, depends_on=list(spec.depends_on), spec=spec.model_dump(mode="json"),
        total_tasks=total, submitted_at=now,
        path_mapping=[rule.model_dump(mode="json") for rule in spec.path_mapping] or None,
    )).inserted_primary_key[0]
    known_keys = {r.key for r in conn.execute(select(tag_sets.c.key))}
    any_ready = False
    for index, checked in enumerate(job.layers):
        layer = checked.spec
        key = tag_key(layer.tags)
        if key not in known_keys:
            conn.execute(insert(tag_sets).values(key=key))
            known_keys.add(key)
            forget_tag_keys(conn.engine)  # and again after the commit (see the submit route)
        layer_id = conn.execute(insert(layers).values(
            job_id=job_id, idx=index, name=layer.name, template=layer.template,
            args=checked.args.model_dump(mode="json"), frames=layer.frames, chunk=layer.chunk,
            cores=layer.resources.cores, memory_mb=layer.resources.memory_mb, gpus=layer.resources.gpus,
            tags=layer.tags, retries=layer.retries, timeout=layer.timeout, depends_on=layer.depends_on,
            env={**spec.env, **layer.env}, cwd=layer.cwd, total_tasks=checked.task_count,
        )).inserted_primary_key[0]
        state = TaskState.READY.value if jobs_ready and not layer.depends_on else TaskState.WAITING.value
        any_ready = any_ready or state == TaskState.READY.value
        insert_tasks(conn, dict(job_id=job_id, layer_id=layer_id, state=state, priority=spec.priority,
                                cores=layer.resources.cores, memory_mb=layer.resources.memory_mb,
                                gpus=layer.resources.gpus, tag_key=key, tries=0, lost=0),
                     checked.task_rows())
    return job_id


def dry_run(job: CheckedJob, limit: int = 1000, target_os: str = "linux") -> dict[str, Any]:
    """The tasks and commands a spec would create (for a node of `target_os` with default executables),
    without writing anything."""
    listed: list[dict[str, Any]] = []
    target = Target(os=target_os)
    for checked in job.layers:
        for chunk in checked.chunks():
            if len(listed) >= limit:
                break
            line = checked.template.build(checked.args, chunk, target, job.spec.path_mapping)
            item = {"layer": checked.spec.name, "index": chunk.index, "frames": chunk.frames,
                    "argv": line.argv, "shell": line.shell, "outputs": line.outputs[:20]}
            if chunk.part:
                item["part"] = chunk.part
            listed.append(item)
    total = sum(c.task_count for c in job.layers)
    warnings = list(job.warnings)
    if total > limit:
        warnings.append(f"showing the first {limit} of {total:,} tasks")
    return {"valid": True, "errors": [], "warnings": warnings, "total_tasks": total, "tasks": listed}
