"""A job derived after its report's route told the dashboards is told again (in process, SQLite).

A finish report that carries the node's next work answers first and checks its job after
(`ServerContext.settle_soon`); the housekeeping derives stuck jobs again; a job's end releases the jobs
waiting on it. Each of these changes a job's state after the route published its ids, so unless the
derivation itself tells the dashboards, a job page or the jobs list shows the job running for good (a
browser test saw that on a loaded CI machine: all six tasks done, the badge never turned succeeded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import insert, select
from tests.support import aio
from tests.support.dispatching import assign

from thresher.server import lifecycle
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext
from thresher.server.db.tables import jobs, nodes
from thresher.server.main import prepare
from thresher.server.submit import check_spec, create_job


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerContext]:
    context = prepare(f"sqlite:///{tmp_path / 'farm.db'}", tmp_path / "data")
    yield context
    context.db.dispose()


def _job(server: ServerContext, name: str, **extra: Any) -> int:
    with server.db.write() as conn:
        return create_job(conn, check_spec({"name": name, **extra, "layers": [
            {"name": "render", "frames": "1-2", "args": {"command": ["true"]}}]}), "tester")


def _run_all_unsettled(server: ServerContext, node_id: int) -> lifecycle.Changes:
    """Claim and finish every task the node is given, without deriving the jobs (as `settle_soon`'s
    caller commits its reports): what is left to settle."""
    with server.db.write() as conn:
        reports = [{"attempt_id": a["attempt_id"], "status": "succeeded", "exit_code": 0}
                   for a in assign(conn, node_id, utcnow())]
        _, changes = lifecycle.finish_attempts(conn, node_id, reports, utcnow(), settle_now=False)
    assert reports and changes.settle
    return changes


def _node(server: ServerContext) -> int:
    now = utcnow()
    with server.db.write() as conn:
        key = conn.execute(insert(nodes).values(
            name="rn1", hostname="rn1", os="linux", instance_id="rn1", cores=8, memory_mb=8000, gpus=[], tags=[],
            state="up", admin_state="enabled", last_seen=now, registered_at=now)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _state(server: ServerContext, job_id: int) -> str:
    with server.db.read() as conn:
        return str(conn.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar_one())


def test_a_job_settled_after_its_answer_is_told_to_the_dashboards(server: ServerContext) -> None:
    node_id = _node(server)
    job_id = _job(server, "settled later")
    changes = _run_all_unsettled(server, node_id)
    server.events.changes.take()  # what the report's route published already
    aio.run(server.settle(changes.settle))
    assert _state(server, job_id) == "succeeded"
    assert job_id in server.events.changes.take().jobs


def test_a_stuck_job_derived_by_the_housekeeping_and_its_waiter_are_told(server: ServerContext) -> None:
    node_id = _node(server)
    first = _job(server, "stuck")
    waiter = _job(server, "after it", depends_on=[first])
    _run_all_unsettled(server, node_id)  # the process died before the check after the reports
    server.events.changes.take()
    assert aio.run(server.rederive_jobs(lifecycle.stuck_jobs)) == 1
    told = server.events.changes.take().jobs
    assert _state(server, first) == "succeeded" and first in told
    assert waiter in told  # its tasks were released: its page shows them ready
