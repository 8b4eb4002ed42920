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

import logging
from collections.abc import Callable

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: The clause as migration 0001 made SQLite store it (the constraint has no name there).
_SQLITE_CLAUSE = ", \n\tFOREIGN KEY(layer_id) REFERENCES layers (id) ON DELETE CASCADE"
_SQLITE_BEFORE = "\n)"

log = logging.getLogger(__name__)


def _sqlite_tasks_sql(change: Callable[[str], str]) -> None:
    """Rewrite the stored CREATE TABLE of `tasks` in this transaction (the schema version moves on, so
    every connection re-reads it). Where the definition is not the one expected, or this SQLite refuses
    schema edits (a build in defensive mode), the table stays as it is and the server starts: a key
    left in place costs speed, never rows, and the task writer checks the layer either way."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'").scalar_one()
    new = change(sql)
    if new == sql:
        log.warning("migration 0013: the tasks table's definition is not the expected one; left as it is")
        return
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'tasks'", (new,))
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    except DBAPIError as error:
        log.warning("migration 0013: SQLite refused to edit the tasks table's definition (%s); left as it is", error)
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _drop_clause(sql: str) -> str:
    return sql.replace(_SQLITE_CLAUSE, "", 1) if sql.count(_SQLITE_CLAUSE) == 1 else sql


def _add_clause(sql: str) -> str:
    if _SQLITE_CLAUSE in sql or not sql.endswith(_SQLITE_BEFORE):
        return sql
    return sql[:-len(_SQLITE_BEFORE)] + _SQLITE_CLAUSE + _SQLITE_BEFORE


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_tasks_sql(_drop_clause)
    else:
        op.drop_constraint("tasks_layer_id_fkey", "tasks", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_tasks_sql(_add_clause)
    else:
        op.create_foreign_key("tasks_layer_id_fkey", "tasks", "layers", ["layer_id"], ["id"], ondelete="CASCADE")
