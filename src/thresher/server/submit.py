"""Submitting a job: a checked spec becomes a job, its layers and its tasks, all in one transaction.

Everything is checked before the first row is written, so a refused job leaves nothing behind: the spec
itself without the database, in one walk (`thresher.model.inspection`: spec, template arguments, frames,
dependencies between layers), then what only the farm can tell (`farm_checks`: unknown jobs in
depends_on, layers no node could ever run), asked again in the writing transaction.

The submit route inspects the spec (`model.inspection`), asks the farm (`farm_checks`) and calls
`create_job`; `check_spec` then `create_job` is the same path for Python callers (tools, tests, benches).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator

from sqlalchemy import Connection

from thresher.model.checked import CheckedJob, CheckedLayer
from thresher.model.dispatch_rule import limit_key
from thresher.model.fit import placement_key
from thresher.model.inspection import inspect_spec
from thresher.model.services import ServiceDefaults
from thresher.model.states import JobState, TaskState, job_state_from_counts
from thresher.server import dependencies, lifecycle, scouts, studio
from thresher.server.clock import utcnow
from thresher.server.db.bulk import insert_tasks, part_json
from thresher.server.db.queries import submit as q
from thresher.server.db.queries.dispatch import TAG_KEYS
from thresher.server.dispatch import forget_tag_keys
from thresher.server.errors import BadInput
from thresher.server.farm_checks import (
    dependency_problems,
    limit_problems,
    problem_detail,
    project_problems,
    runnable_problems,
)


def check_spec(raw: Any, services: Mapping[str, ServiceDefaults] | None = None) -> CheckedJob:
    """Validate a raw spec fully (without the database); raise BadInput listing every problem with its field.
    `services` (`server.services.known_services`) are applied to its layers as the submit route does."""
    job, problems, _needs = inspect_spec(raw, services)
    if problems or job is None:
        raise BadInput(problem_detail(problems), problems)
    return job


def _first_state(jobs_ready: bool) -> JobState:
    """A new job's state, by the one rule (`job_state_from_counts`): its first layer's tasks are ready
    when it waits for no job (a spec's layers have no cycle, so one layer waits on nothing), else every
    task waits until its edges are judged (`dependencies.release`, right after they are written)."""
    return job_state_from_counts({TaskState.READY if jobs_ready else TaskState.WAITING: 1},
                                 paused=False, killed=False)


def create_job(conn: Connection, job: CheckedJob, owner: str, *, create_projects: bool = False,
               submitted_by: str | None = None) -> int:
    """Insert the job, layers and tasks; returns the new job id. A project not known yet is made when
    `create_projects` (the server's `create_unknown_projects`), else refused; a folder is made when new.
    `submitted_by`: the user who submitted it on behalf of its owner (none: the owner did)."""
    spec = job.spec
    # checked again in the writing transaction: nodes and jobs may have gone since the spec was checked
    _states, problems = dependency_problems(conn, job.needs.depends_on)
    problems += dependencies.problems(conn, job)
    problems += (project_problems(conn, spec.project, create_projects) + runnable_problems(conn, job.needs.layers)
                 + limit_problems(conn, job.needs.layers))
    if problems:
        raise BadInput(problem_detail(problems), problems)
    project_id = studio.project_for_submit(conn, spec.project, create=create_projects)
    folder_id, folder_priority = studio.folder_for_submit(conn, project_id, spec.folder) if spec.folder \
        else (None, 0)
    jobs_ready = not spec.depends_on
    job_id: int = conn.execute(q.INSERT_JOB, dict(
        name=spec.name, owner=spec.owner or owner, project=spec.project, sequence=spec.sequence,
        project_id=project_id, folder_id=folder_id, urgent=False, max_failures=spec.max_failures, failures=0,
        shot=spec.shot, priority=spec.priority, state=_first_state(jobs_ready),
        paused=False, killed=False, depends_on=spec.job_ids(), spec=spec.model_dump(mode="json"),
        total_tasks=job.task_count, submitted_at=utcnow(),
        path_mapping=[rule.model_dump(mode="json") for rule in spec.path_mapping] or None,
        submitted_by=submitted_by,
    )).scalar_one()
    known_keys = {row.key for row in conn.execute(TAG_KEYS)}
    layer_ids: dict[str, int] = {}
    for index, checked in enumerate(job.layers):
        layer = checked.spec
        key = placement_key(layer.tags, layer.pools)
        if key not in known_keys:
            conn.execute(q.INSERT_TAG_SET, {"key": key})
            known_keys.add(key)
            forget_tag_keys(conn.engine)  # and again after the commit (see the submit route)
        layer_id = conn.execute(q.INSERT_LAYER, dict(
            job_id=job_id, idx=index, name=layer.name, template=layer.template,
            args=checked.args.model_dump(mode="json"), frames=layer.frames, chunk=layer.chunk,
            cores=layer.resources.cores, memory_mb=layer.resources.memory_mb, gpus=layer.resources.gpus,
            tags=layer.tags, retries=layer.retries, timeout=layer.timeout, depends_on=layer.layer_names(),
            env={**spec.env, **layer.env}, cwd=layer.cwd, total_tasks=checked.task_count,
            pools=layer.pools, limits=layer.limits, service=layer.service, blocklist_after=layer.blocklist_after,
            scout=scouts.record(checked), chunk_decision=checked.auto_chunk,
        )).scalar_one()
        layer_ids[layer.name] = layer_id
        state = TaskState.READY if jobs_ready and not layer.depends_on else TaskState.WAITING
        insert_tasks(conn, dict(job_id=job_id, layer_id=layer_id, state=state, priority=spec.priority,
                                cores=layer.resources.cores, memory_mb=layer.resources.memory_mb,
                                gpus=layer.resources.gpus, tag_key=key, tries=0, lost=0, project_id=project_id,
                                folder_id=folder_id, folder_priority=folder_priority, urgent=False,
                                limit_key=limit_key(layer.limits)),
                     task_rows(checked))
        scouts.hold(conn, checked, layer_id)  # scouts first: the layer's other tasks are held
    if dependencies.write(conn, job, job_id, layer_ids):
        # what is met already is released now, what failed already blocks it (model.dependencies)
        lifecycle.refresh_job(conn, job_id, utcnow())
    return job_id


def task_rows(layer: CheckedLayer) -> Iterator[tuple[int, str, int, int, int, int, str | None]]:
    """A layer's chunks as the rows `bulk.insert_tasks` writes, built without an object per task."""
    for index, fields, part in layer.numbered([part_json(part) for part in layer.parts]):
        yield (index, *fields, part)
