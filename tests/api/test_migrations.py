"""Schema migrations on real databases: the newest revision is what `tables.py` describes, and a
database made by an older revision is brought forward on start with its data."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from tests.support.dispatching import assign

from thresher.server.clock import utcnow
from thresher.server.db.engine import MIGRATIONS, Database
from thresher.server.db.tables import jobs, metadata, tasks
from thresher.server.main import prepare


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


def _old_job(conn: Connection, project: str, frames: int) -> int:
    """A job as revision 0001 stored it (the code of today writes columns 0001 does not have)."""
    now = utcnow()
    job = conn.execute(text(
        "INSERT INTO jobs (name, owner, project, priority, state, paused, killed, depends_on, spec, total_tasks, "
        "submitted_at) VALUES ('before', 'tester', :project, 50, 'queued', false, false, '[]', '{}', :n, :now) "
        "RETURNING id"), {"project": project, "n": frames, "now": now}).scalar_one()
    layer = conn.execute(text(
        "INSERT INTO layers (job_id, idx, name, template, args, frames, chunk, cores, memory_mb, gpus, tags, "
        "retries, depends_on, env, total_tasks) VALUES (:job, 0, 'l', 'command', :args, :frames, 1, 1, 100, 0, "
        "'[]', 2, '[]', '{}', :n) RETURNING id"),
        {"job": job, "args": '{"command": ["true"]}', "frames": f"1-{frames}", "n": frames}).scalar_one()
    conn.execute(text("INSERT INTO tag_sets (key) SELECT '' WHERE NOT EXISTS (SELECT 1 FROM tag_sets)"))
    for i in range(frames):
        conn.execute(text(
            "INSERT INTO tasks (job_id, layer_id, idx, frames, frame_start, frame_end, frame_step, frame_count, "
            "state, priority, cores, memory_mb, gpus, tag_key, tries, lost) VALUES (:job, :layer, :i, :f, :n, :n, 1, "
            "1, 'ready', 50, 1, 100, 0, '', 0, 0)"), {"job": job, "layer": layer, "i": i, "f": str(i + 1), "n": i + 1})
    return int(job)


def test_an_older_database_is_brought_forward_with_its_queue(db_url: str, tmp_path: Path) -> None:
    """Revision 0001's queue is dispatched after the upgrade; project labels became projects, and an
    attempt running through the upgrade is booked in its project's usage."""
    old = Database(db_url)
    try:
        _upgrade(old, "0001")
        with old.write() as conn:
            job = _old_job(conn, "ferryman", 5)
            other = _old_job(conn, "default", 1)
    finally:
        old.dispose()
    server = prepare(db_url, tmp_path / "data")  # what a server start does: migrate to the newest
    try:
        with server.db.write() as conn:
            key = conn.execute(metadata.tables["nodes"].insert().values(
                name="n", hostname="n", os="linux", instance_id="n", cores=2, memory_mb=8000, gpus=[], tags=[],
                state="up", admin_state="enabled", last_seen=utcnow(), registered_at=utcnow())).inserted_primary_key
            assert key is not None
            node = key[0]
            got = assign(conn, node, utcnow())
        assert sorted(a["job_id"] for a in got) == sorted([job, other])  # two projects, one slot each
        with server.db.read() as conn:
            projects = {r.name: r.id for r in conn.execute(select(metadata.tables["projects"]))}
            assert set(projects) == {"default", "ferryman"}
            assert conn.execute(select(jobs.c.project_id).where(jobs.c.id == job)).scalar_one() == projects["ferryman"]
            states = [r.state for r in conn.execute(select(tasks.c.state).where(tasks.c.job_id == job).order_by(tasks.c.id))]
            used = {r.key: r.cores for r in conn.execute(select(metadata.tables["usage"]))}
        assert states == ["running", "ready", "ready", "ready", "ready"]
        assert used[f"project:{projects['ferryman']}"] == 1 and used[f"project:{projects['default']}/pool:default"] == 1
    finally:
        server.db.dispose()


def _old_node(conn: Connection) -> int:
    """A node row as the early revisions hold it."""
    return int(conn.execute(text(
        "INSERT INTO nodes (name, hostname, os, instance_id, cores, memory_mb, gpus, tags, state, admin_state, "
        "last_seen, registered_at) VALUES ('n', 'n', 'linux', 'i', 8, 8000, '[]', '[]', 'up', 'enabled', :now, "
        ":now) RETURNING id"), {"now": utcnow()}).scalar_one())


def _old_attempt(conn: Connection, task: int, job: int, node: int, state: str, *, cores: int, gpu_ids: str) -> None:
    """Attempt 1 of `task` on `node`, as the early revisions hold it."""
    conn.execute(text(
        "INSERT INTO attempts (task_id, job_id, number, node_id, state, cores, memory_mb, gpu_ids, started_at, "
        "log_size) VALUES (:task, :job, 1, :node, :state, :cores, 100, :gpus, :now, 0)"),
        {"task": task, "job": job, "node": node, "state": state, "cores": cores, "gpus": gpu_ids, "now": utcnow()})


def test_an_attempt_running_through_the_upgrade_is_booked(db_url: str) -> None:
    db = Database(db_url)
    try:
        _upgrade(db, "0003")
        with db.write() as conn:
            job = _old_job(conn, "harbour", 1)
            node = _old_node(conn)
            task = conn.execute(text("SELECT id FROM tasks WHERE job_id = :job"), {"job": job}).scalar_one()
            _old_attempt(conn, task, job, node, "running", cores=4, gpu_ids="[0]")
        db.migrate()
        with db.read() as conn:
            used = {r.key: (r.cores, r.gpus) for r in conn.execute(select(metadata.tables["usage"]))}
            booked = conn.execute(text("SELECT booked FROM attempts")).scalar_one()
        assert used["project:2"] == (4, 1) and used["project:2/pool:default"] == (4, 1)
        assert booked is not None
    finally:
        db.dispose()


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


def test_dependencies_of_older_jobs_become_rows_and_still_release(db_url: str, tmp_path: Path) -> None:
    """Revision 0005 copies `jobs.depends_on` and `layers.depends_on` into `dependencies`."""
    from tests.support.dispatching import finish_attempt
    old = Database(db_url)
    try:
        _upgrade(old, "0004")
        with old.write() as conn:
            first = _old_job(conn, "default", 1)
            second = _old_job(conn, "default", 1)
            conn.execute(text("UPDATE jobs SET depends_on = :deps, state = 'waiting' WHERE id = :id"),
                         {"deps": f"[{first}]", "id": second})
            conn.execute(text("UPDATE tasks SET state = 'waiting' WHERE job_id = :id"), {"id": second})
    finally:
        old.dispose()
    server = prepare(db_url, tmp_path / "data")
    try:
        with server.db.write() as conn:
            rows = conn.execute(text("SELECT waiter_job_id, target_job_id, kind, mode FROM dependencies")).all()
            assert [tuple(r) for r in rows] == [(second, first, "job", "success")]
            key = conn.execute(metadata.tables["nodes"].insert().values(
                name="n", hostname="n", os="linux", instance_id="n", cores=1, memory_mb=8000, gpus=[], tags=[],
                state="up", admin_state="enabled", last_seen=utcnow(), registered_at=utcnow())).inserted_primary_key
            assert key is not None
            node = key[0]
            (a,) = assign(conn, node, utcnow())
            assert a["job_id"] == first
            finish_attempt(conn, node, {"attempt_id": a["attempt_id"], "status": "succeeded", "exit_code": 0,
                                        "log_size": 0}, utcnow())
            (b,) = assign(conn, node, utcnow())
        assert b["job_id"] == second
    finally:
        server.db.dispose()


def test_people_come_forward_with_their_jobs_and_the_admin_token(db_url: str, tmp_path: Path) -> None:
    """Revision 0008: the admin token written before belongs to a first admin user, and every owner of a
    job becomes a user (an artist without a password), so their jobs keep their owner."""
    from thresher.server import auth
    from thresher.server.db.tables import users

    data = tmp_path / "data"
    old = Database(db_url)
    try:
        _upgrade(old, "0007")
        with old.write() as conn:
            first = _old_job(conn, "default", 1)
            second = _old_job(conn, "default", 1)
            conn.execute(text("UPDATE jobs SET owner = 'ana' WHERE id = :id"), {"id": second})
            secret = "thr_admin_from-before-0008"
            conn.execute(text("INSERT INTO tokens (digest, kind, name, created_at) VALUES (:d, 'admin', 'admin', :now)"),
                         {"d": auth.digest(secret), "now": utcnow()})
        data.mkdir()
        (data / "admin.token").write_text(secret + "\n")
    finally:
        old.dispose()
    server = prepare(db_url, data)
    try:
        with server.db.read() as conn:
            people = {r.name: (r.role, r.password_hash) for r in conn.execute(select(users))}
            owners = {r.id: r.owner for r in conn.execute(select(jobs.c.id, jobs.c.owner))}
            caller = auth.lookup(conn, secret)
        assert people == {"admin": ("admin", None), "tester": ("artist", None), "ana": ("artist", None)}
        assert owners == {first: "tester", second: "ana"}
        assert caller is not None and caller.role == "admin" and caller.name == "admin" and caller.user_id
        assert (data / "admin.token").read_text().strip() == secret  # still the working token
    finally:
        server.db.dispose()


def test_a_first_start_makes_the_first_admin_and_its_token(db_url: str, tmp_path: Path) -> None:
    from thresher.server import auth

    server = prepare(db_url, tmp_path / "data")
    try:
        with server.db.read() as conn:
            admin = auth.lookup(conn, (tmp_path / "data" / "admin.token").read_text().strip())
            enroll = auth.lookup(conn, (tmp_path / "data" / "enroll.token").read_text().strip())
        assert admin is not None and (admin.kind, admin.name, admin.role) == ("admin", "admin", "admin")
        assert enroll is not None and enroll.kind == "enroll" and enroll.role is None and enroll.user_id is None
        assert (tmp_path / "data" / "admin.token").stat().st_mode & 0o777 == 0o600
    finally:
        server.db.dispose()


def test_revisions_0013_and_0014_keep_every_task_and_attempt(db_url: str) -> None:
    """Revisions 0013 and 0014 drop the layer's and the job's key of `tasks` (on SQLite by editing the
    stored definition: a table rebuild would run the cascades and delete every attempt); the rows stay,
    and retention still deletes a job with its tasks and attempts (it never relied on the cascade)."""
    from thresher.server import retention

    db = Database(db_url)
    try:
        _upgrade(db, "0012")
        with db.write() as conn:
            job = _old_job(conn, "harbour", 3)
            node = _old_node(conn)
            task = conn.execute(text("SELECT min(id) FROM tasks WHERE job_id = :job"), {"job": job}).scalar_one()
            _old_attempt(conn, task, job, node, "succeeded", cores=1, gpu_ids="[]")
        keys_after = {}
        for revision in ("0013", "0014"):
            _upgrade(db, revision)
            with db.read() as conn:
                keys_after[revision] = {tuple(fk["constrained_columns"])
                                        for fk in inspect(conn).get_foreign_keys("tasks")}
                assert conn.execute(text("SELECT count(*) FROM tasks")).scalar_one() == 3
                assert conn.execute(text("SELECT count(*) FROM attempts")).scalar_one() == 1
        assert keys_after == {"0013": {("job_id",)}, "0014": set()}
        db.migrate()
        with db.write() as conn:
            conn.execute(text("UPDATE jobs SET state = 'succeeded' WHERE id = :job"), {"job": job})
            assert retention.delete(conn, [job]) == [job]
        with db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM tasks")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM attempts")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
    finally:
        db.dispose()
