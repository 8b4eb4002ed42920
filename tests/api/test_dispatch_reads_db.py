"""A round's candidate reads against real databases (SQLite and PostgreSQL): a read made longer reads on
from its last row and gives the rows one longer read gives; a task none of the rooms fits is not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from thresher.model.round_shut import Shut
from thresher.server.db.engine import Database
from thresher.server.db.tables import tasks
from thresher.server.dispatch_reads import ProjectReads, Room
from thresher.server.main import prepare
from thresher.server.submit import check_spec, create_job

ANY = frozenset({""})


@pytest.fixture
def db(db_url: str, tmp_path: Path) -> Iterator[Database]:
    database = prepare(db_url, tmp_path / "data").db
    yield database
    database.dispose()


def _submit(db: Database, priority: int, frames: str, **resources: Any) -> None:
    spec = {"name": "job", "priority": priority,
            "layers": [{"name": "r", "frames": frames, "args": {"command": ["echo", "{frame}"]},
                        **({"resources": resources} if resources else {})}]}
    with db.write() as conn:
        create_job(conn, check_spec(spec), "tester", create_projects=True)


def _ids(rows: list[Any]) -> list[int]:
    return [r.id for r in rows]


def test_a_read_made_longer_gives_the_rows_of_one_longer_read(db: Database) -> None:
    _submit(db, 50, "1-9")
    _submit(db, 90, "1-6")
    _submit(db, 50, "1-4")
    with db.read() as conn:
        project_id = conn.execute(select(tasks.c.project_id)).scalars().first()
        assert project_id is not None
        rooms = [Room(ANY, 8, 64_000, 0)]
        grown = ProjectReads(conn, rooms, False, Shut())
        assert len(grown.rows(project_id, 4)) == 4
        assert len(grown.rows(project_id, 11)) == 11
        once = ProjectReads(conn, rooms, False, Shut()).rows(project_id, 11)
        assert _ids(grown.rows(project_id, 11)) == _ids(once)
        whole = ProjectReads(conn, rooms, False, Shut()).rows(project_id, 100)
        assert _ids(grown.rows(project_id, 100)) == _ids(whole) and len(whole) == 19
        assert [r.priority for r in whole] == [90] * 6 + [50] * 13
        assert _ids(whole) == sorted(_ids(whole)[:6]) + sorted(_ids(whole)[6:])


def test_a_task_no_room_fits_is_not_read(db: Database) -> None:
    _submit(db, 90, "1-5", cores=4, gpus=1)   # ahead in the queue, but no asking node fits it
    _submit(db, 50, "1-5")
    with db.read() as conn:
        project_id = conn.execute(select(tasks.c.project_id)).scalars().first()
        assert project_id is not None
        # an idle CPU node and a GPU node with two cores left: one room of the largest of each would read the GPU tasks
        rows = ProjectReads(conn, [Room(ANY, 8, 64_000, 0), Room(ANY, 2, 64_000, 2)], False, Shut()).rows(project_id, 5)
        assert [(r.priority, r.gpus) for r in rows] == [(50, 0)] * 5
        rows = ProjectReads(conn, [Room(ANY, 4, 64_000, 1)], False, Shut()).rows(project_id, 5)
        assert [(r.priority, r.gpus) for r in rows] == [(90, 1)] * 5
