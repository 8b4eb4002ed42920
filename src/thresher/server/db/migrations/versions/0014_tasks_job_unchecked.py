"""A task's job is checked once per layer written, not by a foreign key on every task row.

After revision 0013 the job's key was the larger part of what PostgreSQL spends writing a huge job's
task rows: 200,000 rows COPYed in a submit's transaction took 4.5-4.6 s of the backend's CPU with the
key and 2.6 s without it (`bench/submit_parts.py`, variants `no_layer_fk_binary` and `no_fks_binary`):
a trigger, an index probe and a row lock per task row, all on the same job row. What it guaranteed holds
still: the task writer (`db/bulk.insert_tasks`, the only writer of task rows) checks in the writing
transaction that the layer is one of the job's and locks it, and a layer cannot outlive its job
(`layers.job_id` keeps its key), so no task row can name a job that is gone. A job's tasks are deleted
with it by retention (`server/retention.py` deletes its attempts, edges and tasks before its layers and
the job row), which never relied on the cascade; the attempts' own key on `tasks` still removes a
deleted task's attempts.

SQLite: the stored definition loses the clause, as in 0013 (`db/sqlite_schema.py` says why).

Revision ID: 0014
Revises: 0013
"""

from functools import partial

from alembic import op

from thresher.server.db.sqlite_schema import add_clause, drop_clause, edit_table_definition

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The clause as migration 0001 made SQLite store it (the constraint has no name there).
_SQLITE_CLAUSE = ", \n\tFOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        edit_table_definition(op.get_bind(), "tasks", partial(drop_clause, clause=_SQLITE_CLAUSE), "0014")
    else:
        op.drop_constraint("tasks_job_id_fkey", "tasks", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        edit_table_definition(op.get_bind(), "tasks", partial(add_clause, clause=_SQLITE_CLAUSE), "0014")
    else:
        op.create_foreign_key("tasks_job_id_fkey", "tasks", "jobs", ["job_id"], ["id"], ondelete="CASCADE")
