"""Schema migrations on real databases: the newest revision is what `tables.py` describes, and a
database made by an older revision is brought forward on start with its data."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from tests.support.dispatching import assign

from thresher.server.clock import utcnow
from thresher.server.db.engine import MIGRATIONS, Database
from thresher.server.db.tables import metadata, tasks
from thresher.server.main import prepare
from thresher.server.submit import check_spec, create_job


def _upgrade(db: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def test_the_newest_revision_is_the_schema_the_code_describes(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        with db.read() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            indexes = {ix["name"]: ix for ix in inspect(conn).get_indexes("tasks")}
        assert "ix_tasks_ready" in indexes and "ix_tasks_dispatch" not in indexes
    finally:
        db.dispose()


def test_an_older_database_is_brought_forward_with_its_queue(db_url: str, tmp_path: Path) -> None:
    old = Database(db_url)
    try:
        _upgrade(old, "0001")
        with old.write() as conn:
            job = create_job(conn, check_spec({"name": "before", "layers": [
                {"name": "l", "frames": "1-5", "args": {"command": ["true"]}}]}), "tester")
    finally:
        old.dispose()
    server = prepare(db_url, tmp_path / "data")  # what a server start does: migrate to the newest
    try:
        with server.db.write() as conn:
            node = conn.execute(metadata.tables["nodes"].insert().values(
                name="n", hostname="n", os="linux", instance_id="n", cores=2, memory_mb=8000, gpus=[], tags=[],
                state="up", admin_state="enabled", last_seen=utcnow(), registered_at=utcnow())).inserted_primary_key[0]
            got = assign(conn, node, utcnow())
        assert [a["job_id"] for a in got] == [job, job]
        with server.db.read() as conn:
            states = [r.state for r in conn.execute(select(tasks.c.state).where(tasks.c.job_id == job).order_by(tasks.c.id))]
        assert states == ["running", "running", "ready", "ready", "ready"]
    finally:
        server.db.dispose()


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with db.write() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
        with db.read() as conn:
            assert "ix_tasks_dispatch" in {ix["name"] for ix in inspect(conn).get_indexes("tasks")}
        db.migrate()
        with db.read() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()
