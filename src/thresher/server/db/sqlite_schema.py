"""Removing a constraint from a SQLite table without rebuilding it (for migrations).

SQLite cannot drop a constraint in place, and the usual rebuild (create a copy, move the rows, drop the
old table) runs the cascades of the old table's keys: dropping `tasks` would delete every attempt and
log row that refers to it. SQLite's documented alternative (lang_altertable.html, "making other kinds of
table schema changes") is to edit the table's stored definition: the rows are untouched, and no row can
violate a constraint that went away. Migrations 0013 and 0014 use it on `tasks`.
"""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

#: What a table's stored definition ends with: the clause list's closing parenthesis.
DEFINITION_END = "\n)"


def edit_table_definition(conn: Connection, table: str, change: Callable[[str], str], revision: str) -> None:
    """Rewrite the stored CREATE TABLE of `table` with `change`, in this transaction (the schema version
    moves on, so every connection re-reads it). Where the definition is not the one expected (`change`
    returns it unchanged), or this SQLite refuses schema edits (a build in defensive mode), the table stays
    as it is and the server starts: a key left in place costs speed, never rows."""
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one()
    new = change(sql)
    if new == sql:
        log.warning("migration %s: the %s table's definition is not the expected one; left as it is", revision, table)
        return
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (new, table))
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    except DBAPIError as error:
        log.warning("migration %s: SQLite refused to edit the %s table's definition (%s); left as it is",
                    revision, table, error)
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def drop_clause(sql: str, clause: str) -> str:
    """`sql` without `clause` when it holds it exactly once, else unchanged."""
    return sql.replace(clause, "", 1) if sql.count(clause) == 1 else sql


def add_clause(sql: str, clause: str) -> str:
    """`sql` with `clause` added as its last one, unless it has it already or does not end as expected."""
    if clause in sql or not sql.endswith(DEFINITION_END):
        return sql
    return sql[:-len(DEFINITION_END)] + clause + DEFINITION_END
