"""Statements of a job's failure summary (`server/views.job_failures`): its failed attempts and tasks."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from thresher.model.states import AttemptState, TaskState
from thresher.server.db.tables import attempts, nodes, tasks

# The newest failed attempts of one job (at most `:limit`), with the name of the node each failed on.
FAILED_ATTEMPTS_OF_JOB = (select(attempts.c.id, attempts.c.task_id, nodes.c.name.label("node"), attempts.c.reason)
                          .join(tasks, tasks.c.id == attempts.c.task_id)
                          .join(nodes, nodes.c.id == attempts.c.node_id)
                          .where(tasks.c.job_id == bindparam("job_id"),
                                 attempts.c.state == AttemptState.FAILED.value)
                          .order_by(attempts.c.id.desc()).limit(bindparam("limit")))

# The ids of a job's tasks that are failed now, ascending.
FAILED_TASKS_OF_JOB = (select(tasks.c.id).where(tasks.c.job_id == bindparam("job_id"),
                                                tasks.c.state == TaskState.FAILED.value)
                       .order_by(tasks.c.id))
