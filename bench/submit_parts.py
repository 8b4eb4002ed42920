"""Where a huge submit's time goes inside PostgreSQL: the same task rows COPYed under variants of the schema.

    .venv/bin/python bench/submit_parts.py                    # 1,000,000 rows: before, now, and the bounds
    .venv/bin/python bench/submit_parts.py --rows 200000 --variants baseline no_layer_fk

One durable PostgreSQL (fsync on, as `bench/submit.py`). Per variant: a fresh database migrated to
revision 0012 (the schema before 0013: both keys on `tasks`), the variant's DDL, then the timed part,
one transaction as a submit's: a small job (`submit.create_job`), then `--rows` task rows of its layer
COPYed (text format as the writer did before, or `_binary` as `bulk.insert_tasks` does now), and the
commit. `no_layer_fk_binary` is what the code did after 0013, `no_fks_binary` what it does since 0014. The rows are built before the clock
starts, so the time is the database's (and the driver's); the backend's CPU seconds are printed too,
less noisy on a shared machine. Nothing is asserted; the load average is printed beside each figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy import Connection  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from thresher.server.db import bulk  # noqa: E402
from thresher.server.db.engine import MIGRATIONS, Database  # noqa: E402
from thresher.server.submit import check_spec, create_job  # noqa: E402

#: DDL applied before the timed COPY, per variant (the schema as migrated when none).
VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "no_layer_fk": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey"],
    "no_fks": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
               "ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey"],
    "no_layer_index": ["DROP INDEX ix_tasks_layer_state"],
    "no_job_index": ["DROP INDEX ix_tasks_job_state"],
    "no_ready_index": ["DROP INDEX ix_tasks_ready"],
    "no_layer_fk_no_layer_index": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
                                   "DROP INDEX ix_tasks_layer_state"],
    "no_layer_fk_one_index": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
                              "DROP INDEX ix_tasks_layer_state", "DROP INDEX ix_tasks_job_state",
                              "CREATE INDEX ix_tasks_job_layer_state ON tasks (job_id, layer_id, state)"],
    "no_fks_one_index": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
                         "ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey",
                         "DROP INDEX ix_tasks_layer_state", "DROP INDEX ix_tasks_job_state",
                         "CREATE INDEX ix_tasks_job_layer_state ON tasks (job_id, layer_id, state)"],
    "no_fks_no_job_index": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
                            "ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey", "DROP INDEX ix_tasks_job_state"],
    "no_fks_no_layer_index": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
                              "ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey", "DROP INDEX ix_tasks_layer_state"],
    "no_fks_no_ready_index": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
                              "ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey", "DROP INDEX ix_tasks_ready"],
    "no_fks_no_secondary_index": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
                                  "ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey",
                                  "DROP INDEX ix_tasks_layer_state", "DROP INDEX ix_tasks_job_state"],
    "floor": ["ALTER TABLE tasks DROP CONSTRAINT tasks_layer_id_fkey",
              "ALTER TABLE tasks DROP CONSTRAINT tasks_job_id_fkey",
              "DROP INDEX ix_tasks_layer_state", "DROP INDEX ix_tasks_job_state", "DROP INDEX ix_tasks_ready"],
}
VARIANT_NAMES = [*VARIANTS, *(f"{name}_binary" for name in VARIANTS)]  # the same, COPY in binary format


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def text_copy(conn: Connection, shared: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
    """The task writer as it was before migration 0013: COPY in text format."""
    columns = bulk.TASK_SHARED_COLUMNS + bulk.TASK_ROW_COLUMNS
    head = tuple(shared[name] for name in bulk.TASK_SHARED_COLUMNS)
    cursor = conn.connection.cursor()
    with cursor.copy(f"COPY tasks ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(head + row)
    cursor.close()


def migrate_to(db: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def binary_copy(conn: Connection, shared: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
    columns = bulk.TASK_SHARED_COLUMNS + bulk.TASK_ROW_COLUMNS
    types = ["int4", "int4", "text", "int4", "int4", "int4", "int4", "text", "int4", "int4", "int4",
             "int4", "int4", "bool", "text", "int4", "text", "int8", "int8", "int4", "int4", "text"]
    head = tuple(shared[name] for name in bulk.TASK_SHARED_COLUMNS)
    cursor = conn.connection.cursor()
    with cursor.copy(f"COPY tasks ({', '.join(columns)}) FROM STDIN (FORMAT binary)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(head + row)
    cursor.close()


def backend_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one PostgreSQL backend (it runs on this machine): less noisy than
    wall time on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(pg: PostgresServer, name: str, rows_n: int) -> tuple[float, float]:
    db = Database(pg.create_database())
    migrate_to(db, "0012")  # the schema before this bench's findings (0013 dropped the layer key)
    with db.write() as conn:
        for ddl in VARIANTS[name.removesuffix("_binary")]:
            conn.exec_driver_sql(ddl)
    spec = check_spec({"name": "parts", "layers": [{"name": "render", "frames": "1", "chunk": 1,
                                                    "args": {"command": ["true"]}}]})
    rows = [(i + 1, str(i + 2), i + 2, i + 2, 1, 1, None) for i in range(rows_n)]
    writer: Callable[[Connection, dict[str, Any], list[tuple[Any, ...]]], None] = \
        binary_copy if name.endswith("_binary") else text_copy
    with db.write() as conn:  # as a submit: the job, its layer and its tasks in one transaction
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        cpu = backend_cpu_s(pid)
        started = time.perf_counter()
        job_id = create_job(conn, spec, "bench")
        layer = conn.exec_driver_sql(f"SELECT id FROM layers WHERE job_id = {job_id}").scalar_one()
        writer(conn, dict(job_id=job_id, layer_id=layer, state="ready", priority=50, cores=1, memory_mb=1024,
                          gpus=0, tag_key="", tries=0, lost=0, project_id=1, folder_id=None, folder_priority=0,
                          urgent=False, limit_key=""), rows)
    took = time.perf_counter() - started
    cpu = backend_cpu_s(pid) - cpu
    db.dispose()
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--variants", nargs="*", choices=VARIANT_NAMES,
                        default=["baseline", "no_layer_fk", "no_fks", "floor", "baseline_binary", "no_layer_fk_binary"])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    pg = PostgresServer(fast=False).start()
    try:
        for _ in range(args.runs):
            for name in args.variants:
                took, cpu = run(pg, name, args.rows)
                print(f"{name:<28} {args.rows:>9,} rows {took:6.2f} s, backend CPU {cpu:6.2f} s  ({load()})",
                      flush=True)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
