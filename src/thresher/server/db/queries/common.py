"""Building blocks for the named statements: the few things SQLite and PostgreSQL spell differently.

Every statement the server runs lives in a module of this package, one per domain (`dispatch`,
`reports`, `jobs`, `nodes`, ...), as a module-level name with a one-line comment saying what it is
for. Statements are built once, at import; a statement that differs per dialect is a dict keyed by
the dialect name (`per_dialect`), so callers pick it with `conn.dialect.name` and never branch on it.
Statements whose filters vary with the request (a page of jobs) are named builder functions here,
never text assembled in a route.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import ARRAY, Integer, any_, bindparam

DIALECTS = ("sqlite", "postgresql")


def ids_in(column: Any, name: str) -> dict[str, Any]:
    """`column IN (ids)`, spelled per dialect: PostgreSQL gets `= ANY(array)`, one statement text whatever
    the number of ids (psycopg prepares it once), SQLite an expanding IN list. Index with the dialect name."""
    return {"sqlite": column.in_(bindparam(name, expanding=True)),
            "postgresql": column == any_(bindparam(name, type_=ARRAY(Integer)))}


def per_dialect(build: Callable[[str], Any]) -> dict[str, Any]:
    """A statement built once per dialect (see `ids_in`)."""
    return {dialect: build(dialect) for dialect in DIALECTS}
