"""A paused layer stays paused for the tasks freed after the pause (**the** rule is
`model.states.freed_state`).

A layer's own pause is `layers.paused` (migration 0012), set by `layer_steering.pause_layer` (which
parks its ready tasks as `paused`) even when all its tasks still wait on dependencies or scouts. Every
place that frees a task asks here where it goes: the dependency check (`dependencies.release`,
`release_ended`: what scouts' held tasks released, `chunk: auto`'s regrouped tasks and satisfied
dependencies all pass through it), a failed try retried and a lost attempt requeued
(`lifecycle._finish_one`, `lose_attempts`). Resuming the layer makes them ready.

A job's pause and a layer's are two switches: resuming the job leaves the layers paused one by one as
they are (their tasks stay paused; the job page and `thresher job` show them `paused`), and a layer's
resume is refused while its job is paused. Neither resume silently undoes the other's pause.
"""

from __future__ import annotations

from sqlalchemy import Connection

from thresher.model.states import TaskState, freed_state
from thresher.server.db.queries import steering as qs


def is_paused(conn: Connection, layer_id: int) -> bool:
    """Whether a person paused this layer by itself (`layers.paused`)."""
    return bool(conn.execute(qs.LAYER_PAUSED, {"layer_id": layer_id}).scalar())


def freed(conn: Connection, layer_id: int, job_paused: bool) -> TaskState:
    """Where a task of this layer goes once free, its job's pause known (one primary-key lookup unless the job is paused)."""
    return freed_state(job_paused=job_paused, layer_paused=not job_paused and is_paused(conn, layer_id))


def freed_in_job(conn: Connection, job_id: int, layer_id: int) -> TaskState:
    """The same, the job's pause read too."""
    row = conn.execute(qs.PAUSE_OF_LAYER, {"job_id": job_id, "layer_id": layer_id}).one()
    return freed_state(job_paused=bool(row.job_paused), layer_paused=bool(row.layer_paused))
