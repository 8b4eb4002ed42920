"""What only the farm can tell about a spec, on SQLite and PostgreSQL: jobs in depends_on that do not
exist, and layers no registered node could ever run (by the fit rule dispatch follows, GPUs and tags
included), asked again by the submit in its own transaction."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from sqlalchemy import insert

from thresher.model.checked import LayerNeeds
from thresher.model.fit import Needs
from thresher.model.states import JobState, NodeAdminState, NodeState
from thresher.server.clock import utcnow
from thresher.server.db.engine import Database
from thresher.server.db.tables import nodes
from thresher.server.errors import BadInput
from thresher.server.farm_checks import dependency_problems, farm_problems, runnable_problems
from thresher.server.submit import check_spec, create_job


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()


def _node(db: Database, name: str, cores: int = 4, memory_mb: int = 16000, gpus: int = 0,
          tags: list[str] | None = None) -> None:
    now = utcnow()
    with db.write() as conn:
        conn.execute(insert(nodes).values(
            name=name, hostname=name, os="linux", instance_id=name, cores=cores, memory_mb=memory_mb,
            gpus=[{"index": i, "name": "gpu", "memory_mb": 1000, "uuid": f"{name}-{i}"} for i in range(gpus)],
            tags=tags or [], state=NodeState.UP, admin_state=NodeAdminState.ENABLED, last_seen=now, registered_at=now))


def _spec(**layer: Any) -> dict[str, Any]:
    return {"name": "j", "layers": [{"name": "render", "args": {"command": ["echo", "{frame}"]}, **layer}]}


def _needs(cores: int = 1, memory_mb: int = 512, gpus: int = 0, tags: tuple[str, ...] = ()) -> list[LayerNeeds]:
    return [LayerNeeds("layers.0.resources", Needs(cores, memory_mb, gpus, frozenset(tags)))]


def test_with_no_node_at_all_every_layer_may_wait_for_one(db: Database) -> None:
    with db.read() as conn:
        assert runnable_problems(conn, _needs(cores=512, gpus=8)) == []


def test_a_layer_fits_when_one_idle_node_has_all_it_needs(db: Database) -> None:
    _node(db, "cpu", cores=32, memory_mb=64000, tags=["houdini"])
    _node(db, "gpu", cores=8, memory_mb=32000, gpus=2)
    with db.read() as conn:
        assert runnable_problems(conn, _needs(cores=32, memory_mb=64000, tags=("houdini",))) == []
        assert runnable_problems(conn, _needs(cores=8, gpus=2)) == []
        # each need is met by some node, but no node meets them all
        (problem,) = runnable_problems(conn, _needs(cores=8, gpus=1, tags=("houdini",)))
    assert problem["field"] == "layers.0.resources"
    assert problem["message"] == ("no node can run this layer (needs 8 cores, 512 MB, 1 GPU, tags ['houdini']); "
                                  "the largest node, cpu, has 32 cores and 64000 MB")
    with db.read() as conn:
        assert runnable_problems(conn, _needs(gpus=3))[0]["message"].startswith("no node can run this layer")


def test_unknown_jobs_in_depends_on_are_named_by_their_place(db: Database) -> None:
    with db.write() as conn:
        known = create_job(conn, check_spec(_spec()), "tester")
    with db.read() as conn:
        states, problems = dependency_problems(conn, [known, 424242, known])
        assert states == {known: JobState.QUEUED}
        assert problems == [{"field": "depends_on.1", "message": "no job with id 424242"}]
        checked = check_spec({**_spec(resources={"cores": 64}), "depends_on": [424242]})
        assert farm_problems(conn, checked.needs) == [{"field": "depends_on.0", "message": "no job with id 424242"}]


def test_the_submit_checks_the_farm_again_in_its_transaction(db: Database) -> None:
    """A spec checked while a large node was there is refused if it went before the rows are written."""
    checked = check_spec(_spec(resources={"cores": 16}))
    _node(db, "small", cores=2)
    with pytest.raises(BadInput) as info:
        with db.write() as conn:
            create_job(conn, checked, "tester")
    assert info.value.detail == "no node could ever run part of this job"
    assert [e["field"] for e in info.value.errors] == ["layers.0.resources"]
    _node(db, "large", cores=16)
    with db.write() as conn:
        assert create_job(conn, checked, "tester") > 0
