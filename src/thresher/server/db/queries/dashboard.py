"""The web dashboard's statements (server/dashboard/): what its pages show beyond the API's views
(server/views.py)."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from thresher.model.states import AttemptState, TaskState
from thresher.server.db.tables import attempts, jobs, layers, tasks

# Sessions read their tokens through `queries/tokens.py`.

# -- job and task pages --------------------------------------------------------------------------

# Columns a task's declared outputs are computed from (its chunk, tile or wedge value, its layer's template
# and its job's path mapping).
_OUTPUT_COLUMNS = (tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end, tasks.c.frame_step,
                   tasks.c.frame_count, tasks.c.part, layers.c.template, layers.c.args, layers.c.cwd,
                   layers.c.frames.label("layer_frames"), jobs.c.path_mapping)

# One task's output columns, for its thumbnails and its page's list of files, with when its latest attempt
# started and ended (a preview shows only a file that attempt wrote: dashboard/thumbs.written_by_attempt).
TASK_OUTPUTS = (select(*_OUTPUT_COLUMNS, attempts.c.started_at.label("attempt_started_at"),
                       attempts.c.ended_at.label("attempt_ended_at"))
                .join(layers, layers.c.id == tasks.c.layer_id).join(jobs, jobs.c.id == tasks.c.job_id)
                .outerjoin(attempts, attempts.c.id == tasks.c.attempt_id)
                .where(tasks.c.id == bindparam("task_id")))

# A job's newest succeeded tasks with their output columns and attempt times: the job page's previews.
NEWEST_SUCCEEDED_TASKS = (select(tasks.c.id, *_OUTPUT_COLUMNS, layers.c.name.label("layer"),
                                 attempts.c.started_at.label("attempt_started_at"),
                                 attempts.c.ended_at.label("attempt_ended_at"))
                          .join(layers, layers.c.id == tasks.c.layer_id).join(jobs, jobs.c.id == tasks.c.job_id)
                          .outerjoin(attempts, attempts.c.id == tasks.c.attempt_id)
                          .where(tasks.c.job_id == bindparam("job_id"), tasks.c.state == TaskState.SUCCEEDED)
                          .order_by(tasks.c.ended_at.desc(), tasks.c.id.desc()).limit(bindparam("limit")))


# A job's stitch layers (the server adds one after each tiled layer; `depends_on` names the tiled layer).
STITCH_LAYERS = select(layers.c.id, layers.c.depends_on).where(layers.c.job_id == bindparam("job_id"),
                                                               layers.c.template == "stitch")

# A task's first frame.
TASK_FIRST_FRAME = select(tasks.c.frame_start).where(tasks.c.id == bindparam("task_id"))

# The task of a layer whose frames hold `:frame` (the stitch task assembling a tile task's frame).
TASK_AT_FRAME = (select(tasks.c.id).where(tasks.c.layer_id == bindparam("layer_id"),
                                          tasks.c.frame_start <= bindparam("frame"), tasks.c.frame_end >= bindparam("frame"))
                 .order_by(tasks.c.idx).limit(1))

# Id, name and state of one job: the job a task page's task belongs to.
JOB_BRIEF = select(jobs.c.id, jobs.c.name, jobs.c.state).where(jobs.c.id == bindparam("job_id"))

# -- node page -----------------------------------------------------------------------------------

FAILED_ATTEMPT_STATES = (AttemptState.FAILED, AttemptState.LOST, AttemptState.KILLED)

_NODE_ATTEMPTS = (select(attempts, tasks.c.frames, tasks.c.layer_id, jobs.c.name.label("job_name"),
                         layers.c.name.label("layer_name"))
                  .join(tasks, tasks.c.id == attempts.c.task_id).join(jobs, jobs.c.id == attempts.c.job_id)
                  .join(layers, layers.c.id == tasks.c.layer_id).where(attempts.c.node_id == bindparam("node_id")))

# A node's newest attempts, with their task's frames, job and layer names.
NODE_RECENT_ATTEMPTS = _NODE_ATTEMPTS.order_by(attempts.c.id.desc()).limit(bindparam("limit"))

# A node's newest attempts that failed, were lost or were killed.
NODE_RECENT_FAILURES = (_NODE_ATTEMPTS.where(attempts.c.state.in_(FAILED_ATTEMPT_STATES))
                        .order_by(attempts.c.id.desc()).limit(bindparam("limit")))

# An attempt's task and number (the name of its downloaded log, `dashboard/logs.py`).
ATTEMPT_NAME = select(attempts.c.task_id, attempts.c.number).where(attempts.c.id == bindparam("attempt_id"))
