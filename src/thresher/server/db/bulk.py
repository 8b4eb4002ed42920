"""Writing a job's tasks in bulk: a million rows in seconds, not minutes.

SQLAlchemy's `insert()` with a list of dicts builds and type-processes every row's parameters in
Python (about 10 µs a row), which made a 1,000,000-frame job spend most of its submit there. Here the
rows go to the driver as plain tuples: SQLite's `executemany` over a generator (the rows are never all
in memory at once), PostgreSQL's `COPY ... FROM STDIN` in binary format (psycopg's C row writer;
the server parses no text). Both run on the caller's connection, inside its transaction: a refused or
failed submit still leaves nothing behind.

This is the only writer of task rows, and it checks their layer and job: `tasks.layer_id` and
`tasks.job_id` have no foreign keys (checked on every row they cost most of a huge submit on
PostgreSQL, migrations 0013 and 0014), so the layer is checked here once per call, in the same
transaction, to be one of the tasks' job, and is locked as the key would have locked it; a layer
cannot outlive its job (its own key), so the job is there as long as the lock is held.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from sqlalchemy import BigInteger, Boolean, Connection, Integer

from thresher.server.db.queries import submit as q
from thresher.server.db.tables import tasks

#: Columns every task of a layer shares, in the order `insert_tasks` takes them.
TASK_SHARED_COLUMNS = ("job_id", "layer_id", "state", "priority", "cores", "memory_mb", "gpus", "tag_key",
                       "tries", "lost", "project_id", "folder_id", "folder_priority", "urgent", "limit_key")
#: Columns each task has its own values for: (idx, frames, frame_start, frame_end, frame_step,
#: frame_count, part as JSON text or None).
TASK_ROW_COLUMNS = ("idx", "frames", "frame_start", "frame_end", "frame_step", "frame_count", "part")

_COLUMNS = ", ".join(TASK_SHARED_COLUMNS + TASK_ROW_COLUMNS)


def _binary_type(column: str) -> str:
    """The PostgreSQL type whose binary form COPY is sent for a column: text for every string and the
    JSON column (json's binary form is its text)."""
    kind = tasks.c[column].type
    if isinstance(kind, BigInteger):
        return "int8"
    if isinstance(kind, Integer):
        return "int4"
    return "bool" if isinstance(kind, Boolean) else "text"


_BINARY_TYPES = [_binary_type(name) for name in TASK_SHARED_COLUMNS + TASK_ROW_COLUMNS]


class UnknownLayer(LookupError):
    """Task rows named a layer that is not one of their job's (what a foreign key would have refused)."""


def part_json(part: dict[str, Any] | None) -> str | None:
    """A task's `part` (tile or wedge value) as the JSON text its column holds."""
    return None if part is None else json.dumps(part)


def insert_tasks(conn: Connection, shared: dict[str, Any],
                 rows: Iterable[tuple[int, str, int, int, int, int, str | None]]) -> None:
    """Insert tasks with the `shared` column values and one tuple of `TASK_ROW_COLUMNS` each; raise
    UnknownLayer, writing nothing, when `shared`'s layer is not one of its job's."""
    if conn.execute(q.LAYER_OF_JOB, {"layer_id": shared["layer_id"], "job_id": shared["job_id"]}).first() is None:
        raise UnknownLayer(f"layer {shared['layer_id']} is not a layer of job {shared['job_id']}")
    head = tuple(shared[name] for name in TASK_SHARED_COLUMNS)
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY tasks ({_COLUMNS}) FROM STDIN (FORMAT binary)") as copy:
                copy.set_types(_BINARY_TYPES)
                for row in rows:
                    copy.write_row(head + row)
        else:
            marks = ", ".join("?" * (len(TASK_SHARED_COLUMNS) + len(TASK_ROW_COLUMNS)))
            cursor.executemany(f"INSERT INTO tasks ({_COLUMNS}) VALUES ({marks})",
                               (head + row for row in rows))  # type: ignore[arg-type]  # any iterable will do
    finally:
        cursor.close()
