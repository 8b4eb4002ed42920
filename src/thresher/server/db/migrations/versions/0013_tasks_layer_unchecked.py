"""A task's layer is checked once per layer written, not by a foreign key on every task row.

A 1,000,000-task submit spent half its time on PostgreSQL in the two foreign-key checks each task row
got (its job, its layer): a trigger and an index probe per row and key. The job's key stays (it also
removes a deleted job's tasks); `tasks.layer_id` loses its own. What it guaranteed holds still, and
more strictly: the task writer (`db/bulk.insert_tasks`, the only writer of task rows) checks the layer
once per call, in the writing transaction, and that the layer is of the task's job (the key never
checked that); a layer is deleted only with its job, whose tasks go first (`server/retention.py`)
or by the job's key.

SQLite cannot drop a constraint in place, and rebuilding `tasks` would run its cascades (dropping the
old table deletes every attempt and log row that refers to it). The table's stored definition loses
the clause instead, SQLite's documented way of removing a constraint (lang_altertable.html, "making
other kinds of table schema changes"): the rows are untouched, no row can violate a constraint that
went away.

Revision ID: 0013
Revises: 0012
"""

from functools import partial

from alembic import op

from thresher.server.db.sqlite_schema import add_clause, drop_clause, edit_table_definition

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: The clause as migration 0001 made SQLite store it (the constraint has no name there).
_SQLITE_CLAUSE = ", \n\tFOREIGN KEY(layer_id) REFERENCES layers (id) ON DELETE CASCADE"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        edit_table_definition(op.get_bind(), "tasks", partial(drop_clause, clause=_SQLITE_CLAUSE), "0013")
    else:
        op.drop_constraint("tasks_layer_id_fkey", "tasks", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        edit_table_definition(op.get_bind(), "tasks", partial(add_clause, clause=_SQLITE_CLAUSE), "0013")
    else:
        op.create_foreign_key("tasks_layer_id_fkey", "tasks", "layers", ["layer_id"], ["id"], ondelete="CASCADE")
