"""People steering one layer of a job (the job page's layer row, `POST /jobs/{id}/layers/{name}/...`).

The job-wide actions live in `server/lifecycle.py`; these do the same to one layer's tasks, in the
caller's transaction, and derive the job's state again with `lifecycle.refresh_job` (the only writer
of job state). Pausing a layer sets its own flag (`layers.paused`) and parks its ready tasks as
`paused`; while it is set, the tasks freed later (dependencies met, scouts' held tasks released, a failed
try retried) are parked too (`server/layer_pause.py`) until it is resumed. So a layer whose tasks all
still wait (on dependencies or scouts) can be paused. An action that would do nothing is refused with
the state it met (**the** rule: `model/steering_rule.layer_refusal`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection

from thresher.model.states import TaskState
from thresher.model.steering_rule import Action, layer_refusal
from thresher.server import lifecycle
from thresher.server.db.queries import steering as qs
from thresher.server.db.queries.steering import STEERABLE_TASK_STATES
from thresher.server.errors import Conflict, NotFound
from thresher.server.lifecycle import Changes

_UNFINISHED = [*STEERABLE_TASK_STATES, TaskState.RUNNING]


def layer_named(conn: Connection, job_id: int, name: str) -> Any:
    """The job's layer of that name, or 404 naming it: what a layer's actions and the task listing's
    `?layer=` say of a name the job does not have (an empty listing would read as a layer with no tasks)."""
    layer = conn.execute(qs.LAYER_BY_NAME, {"job_id": job_id, "name": name}).first()
    if layer is None:
        raise NotFound(f"job {job_id} has no layer named {name!r}")
    return layer


def _layer(conn: Connection, job_id: int, name: str) -> Any:
    lifecycle.job_row(conn, job_id)
    return layer_named(conn, job_id, name)


def _tasks(conn: Connection, layer_id: int, states: Sequence[str]) -> list[Any]:
    return list(conn.execute(qs.LAYER_TASKS_IN, {"layer_id": layer_id, "states": states}).all())


def _refuse(conn: Connection, action: Action, job_id: int, layer: Any) -> None:
    """409 when `action` would do nothing to the layer, naming the state it met."""
    counts = {r.state: r.n for r in conn.execute(qs.LAYER_TASK_COUNTS, {"layer_id": layer.id})}
    refusal = layer_refusal(action, job_id, layer.name, paused=bool(layer.paused),
                            job_paused=bool(lifecycle.job_row(conn, job_id).paused), counts=counts)
    if refusal:
        raise Conflict(refusal)


def pause_layer(conn: Connection, job_id: int, name: str, now: datetime, by: str | None = None) -> Changes:
    """Running tasks finish; the layer's ready tasks (and those freed later) wait as `paused` until it is
    resumed."""
    layer = _layer(conn, job_id, name)
    _refuse(conn, Action.PAUSE, job_id, layer)
    conn.execute(qs.SET_LAYER_PAUSED, {"layer_id": layer.id, "b_paused": True})
    conn.execute(qs.MOVE_LAYER_TASKS, {"b_layer_id": layer.id, "from_state": TaskState.READY,
                                       "to_state": TaskState.PAUSED})
    return lifecycle.refresh_job(conn, job_id, now)


def resume_layer(conn: Connection, job_id: int, name: str, now: datetime, by: str | None = None) -> Changes:
    """The layer's paused tasks become ready again (unless the whole job is paused: resume the job)."""
    layer = _layer(conn, job_id, name)
    _refuse(conn, Action.RESUME, job_id, layer)
    conn.execute(qs.SET_LAYER_PAUSED, {"layer_id": layer.id, "b_paused": False})
    n = conn.execute(qs.MOVE_LAYER_TASKS, {"b_layer_id": layer.id, "from_state": TaskState.PAUSED,
                                           "to_state": TaskState.READY}).rowcount
    return Changes(ready=n).merge(lifecycle.refresh_job(conn, job_id, now))


def retry_layer(conn: Connection, job_id: int, name: str, now: datetime, by: str | None = None) -> Changes:
    """The layer's failed and killed tasks get a fresh set of tries (`lifecycle.retry_tasks`)."""
    layer = _layer(conn, job_id, name)
    _refuse(conn, Action.RETRY, job_id, layer)
    ids = [t.id for t in _tasks(conn, layer.id, [TaskState.FAILED, TaskState.KILLED])]
    return lifecycle.retry_tasks(conn, job_id, ids, now)


def _end_layer(conn: Connection, job_id: int, name: str, state: TaskState, now: datetime, by: str | None) -> Changes:
    layer = _layer(conn, job_id, name)
    killing = state == TaskState.KILLED
    _refuse(conn, Action.KILL if killing else Action.SKIP, job_id, layer)
    open_tasks = _tasks(conn, layer.id, _UNFINISHED)
    changes = lifecycle.kill_running(conn, [t for t in open_tasks if t.state == TaskState.RUNNING],
                                     f"layer {name} {'killed' if killing else 'skipped'}", by)
    conn.execute(qs.END_LAYER_TASKS, {"b_layer_id": layer.id, "from_states": _UNFINISHED, "b_state": state,
                                      "now": now})
    if state == TaskState.SKIPPED:  # done by hand: nothing is left for its pause to hold (a killed layer
        conn.execute(qs.SET_LAYER_PAUSED, {"layer_id": layer.id, "b_paused": False})  # retried stays paused)
    return changes.merge(lifecycle.refresh_job(conn, job_id, now))


def kill_layer(conn: Connection, job_id: int, name: str, now: datetime, by: str | None = None) -> Changes:
    """The layer's running tasks are stopped and its unfinished ones killed (retry brings them back)."""
    return _end_layer(conn, job_id, name, TaskState.KILLED, now, by)


def skip_layer(conn: Connection, job_id: int, name: str, now: datetime, by: str | None = None) -> Changes:
    """The layer's unfinished tasks are marked done by hand (its dependents may start)."""
    return _end_layer(conn, job_id, name, TaskState.SKIPPED, now, by)


# Each takes who does it (`by`): what a stopped attempt keeps names them ("layer comp killed by ana").
ACTIONS = {"pause": pause_layer, "resume": resume_layer, "retry": retry_layer, "kill": kill_layer,
           "skip": skip_layer}
