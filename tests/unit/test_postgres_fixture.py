"""The suite's private PostgreSQL server works and hands out isolated databases."""

import psycopg
import pytest


@pytest.mark.postgres
def test_postgres_answers(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
def test_each_test_gets_a_fresh_database(postgres, pg_url: str) -> None:
    other = postgres.create_database()
    try:
        assert other != pg_url
        with psycopg.connect(pg_url) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (1)")
        with psycopg.connect(other) as conn:
            assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
    finally:
        postgres.drop_database(other)


def test_db_url_kinds(db_url: str) -> None:
    assert db_url.startswith(("sqlite:///", "postgresql://"))
    if db_url.startswith("postgresql://"):
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
            assert row is not None and row[0] == db_url.rsplit("/", 1)[1]
