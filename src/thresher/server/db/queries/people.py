"""Statements about people (`server/users.py`, `server/permits.py`): users, who owns a job, projects' members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from thresher.server.db.queries.common import per_dialect
from thresher.server.db.tables import jobs, project_members, projects, tasks, users

# The owner of a job, by the job's id (an artist's call on one job).
JOB_OWNER = select(jobs.c.id.label("job_id"), jobs.c.owner).where(jobs.c.id == bindparam("id"))

# The owner of a task's job, by the task's id.
TASK_JOB_OWNER = (select(jobs.c.id.label("job_id"), jobs.c.owner).join(tasks, tasks.c.job_id == jobs.c.id)
                  .where(tasks.c.id == bindparam("id")))

# Every user by name.
USERS = select(users).order_by(users.c.name)

# One user by name.
USER_BY_NAME = select(users).where(users.c.name == bindparam("name"))

# A new user, answering its id.
INSERT_USER = insert(users).returning(users.c.id)


def _insert_missing(dialect: str) -> Any:
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return build(users).on_conflict_do_nothing(index_elements=["name"])


# A user made unless one of that name exists (a job's owner named by a wrangler's submit), per dialect.
INSERT_USER_IF_MISSING = per_dialect(_insert_missing)

# A user's role, disabled flag or password hash changed (the columns given with the call).
UPDATE_USER = update(users).where(users.c.id == bindparam("user_id"))

# The members of a project, by the project's name.
MEMBERS = (select(users.c.name).join(project_members, project_members.c.user_id == users.c.id)
           .join(projects, projects.c.id == project_members.c.project_id)
           .where(projects.c.name == bindparam("project")).order_by(users.c.name))

# A project's id by name.
PROJECT_ID = select(projects.c.id).where(projects.c.name == bindparam("project"))

# Is the user already a member?
IS_MEMBER = select(project_members.c.user_id).where(project_members.c.project_id == bindparam("project_id"),
                                                    project_members.c.user_id == bindparam("user_id"))

# A member added.
ADD_MEMBER = insert(project_members)

# A member removed.
REMOVE_MEMBER = delete(project_members).where(project_members.c.project_id == bindparam("project_id"),
                                              project_members.c.user_id == bindparam("user_id"))
