"""The task rows a submit writes in bulk (SQLite executemany, PostgreSQL COPY) say exactly what the
layer's chunks say: frames, numbering, and tile or wedge values that COPY's text format must escape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from thresher.model.states import TaskState
from thresher.server.db.bulk import UnknownLayer, insert_tasks
from thresher.server.db.engine import Database
from thresher.server.db.tables import layers, tasks
from thresher.server.submit import check_spec, create_job

AWKWARD_WEDGE = ["tab\there", "back\\slash", "new\nline", "\\N", "quote\"s", "ünïcødé ✓", "", 0.25, -3]


def _job(**layer: Any) -> dict[str, Any]:
    return {"name": "rows", "layers": [{"name": "render", "args": {"command": ["echo", "{frame}", "{wedge}"]},
                                        **layer}]}


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.mark.parametrize("layer", [
    {"frames": "1-23", "chunk": 5},
    {"frames": "-10--1x3", "chunk": 2},
    {"frames": "1,5,10-20,40-30x-2", "chunk": 4},
    {"frames": "1-100y10", "chunk": 7},
    {"frames": "1-6", "chunk": 4, "wedge": AWKWARD_WEDGE},
    {"frames": "1-3", "template": "povray", "tiles": "2x2",
     "args": {"scene": "/shots/s.pov", "output": "/shots/out/s.####.png", "width": 64, "height": 48}},
], ids=["range", "negative-step", "list", "inverted", "wedge", "tiles"])
def test_written_rows_match_the_chunks(db: Database, layer: dict[str, Any]) -> None:
    checked = check_spec(_job(**layer))
    with db.write() as conn:
        job_id = create_job(conn, checked, "tester")
    expected = [(c.index, c.frames, c.start, c.end, c.step, c.count, c.part) for c in checked.layers[0].chunks()]
    with db.read() as conn:
        first_layer = conn.execute(select(layers.c.id).where(layers.c.job_id == job_id, layers.c.idx == 0)).scalar_one()
        rows = conn.execute(select(tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end,
                                   tasks.c.frame_step, tasks.c.frame_count, tasks.c.part, tasks.c.state,
                                   tasks.c.tries, tasks.c.lost, tasks.c.cores)
                            .where(tasks.c.layer_id == first_layer).order_by(tasks.c.id)).all()
    assert [tuple(r[:7]) for r in rows] == expected
    assert len(rows) == checked.layers[0].task_count and [r.idx for r in rows] == list(range(len(rows)))
    assert {(r.state, r.tries, r.lost, r.cores) for r in rows} == {(TaskState.READY, 0, 0, checked.layers[0].spec.resources.cores)}
    if "wedge" in layer:
        assert [r.part["wedge"] for r in rows[:len(AWKWARD_WEDGE)]] == AWKWARD_WEDGE
        assert [r.part["wedge_index"] for r in rows] == [i % len(AWKWARD_WEDGE) for i in range(len(rows))]
        assert [r.frames for r in rows[:len(AWKWARD_WEDGE) + 1]] == ["1-4"] * len(AWKWARD_WEDGE) + ["5-6"]


def test_a_failed_submit_leaves_no_rows(db: Database, tmp_path: Path) -> None:
    """The bulk writer runs in the submit's transaction: an error after it rolls every row back."""
    checked = check_spec(_job(frames="1-5000"))
    with pytest.raises(RuntimeError):
        with db.write() as conn:
            create_job(conn, checked, "tester")
            raise RuntimeError("something after the tasks were written")
    with db.read() as conn:
        assert conn.execute(select(tasks.c.id)).first() is None


def test_task_rows_must_name_a_layer_of_their_job(db: Database) -> None:
    """`tasks.layer_id` has no foreign key (migration 0013): the writer checks the layer once per call,
    and more strictly than the key did (a layer of another job is refused too); nothing is written."""
    with db.write() as conn:
        first = create_job(conn, check_spec(_job(frames="1-3")), "tester")
        second = create_job(conn, check_spec(_job(frames="1-2")), "tester")
        layer_of_second = conn.execute(select(layers.c.id).where(layers.c.job_id == second)).scalar_one()
    shared = dict(job_id=first, state=TaskState.READY, priority=50, cores=1, memory_mb=100, gpus=0, tag_key="",
                  tries=0, lost=0, project_id=1, folder_id=None, folder_priority=0, urgent=False, limit_key="")
    for layer_id in (layer_of_second, layer_of_second + 1000):
        with pytest.raises(UnknownLayer):
            with db.write() as conn:
                insert_tasks(conn, {**shared, "layer_id": layer_id}, [(9, "9", 9, 9, 1, 1, None)])
    with db.read() as conn:
        counts: dict[int, int] = dict(conn.execute(select(tasks.c.job_id, func.count()).group_by(tasks.c.job_id)).all())
    assert counts == {first: 3, second: 2}
