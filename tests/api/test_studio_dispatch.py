"""Studio scheduling against real databases: projects' caps and stakes, folders, licence limits and
urgent jobs as dispatch applies them, the usage counters that make caps exact, and caps that hold when
several dispatchers race (PostgreSQL: threads with their own connections, as two server processes are)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Row, insert, select, text, update
from tests.api.test_dispatch_db import Bench, layer
from tests.support.dispatching import assign

from thresher.model.dispatch_rule import folder_key, limit_usage_key, project_key, stake_key
from thresher.server import dispatch, lifecycle, studio, usage
from thresher.server.clock import utcnow
from thresher.server.db.tables import attempts, jobs, limits, project_pools, projects, tasks
from thresher.server.errors import BadInput
from thresher.server.submit import check_spec, create_job


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def _project(bench: Bench, name: str, **values: Any) -> int:
    with bench.db.write() as conn:
        return studio.add_project(conn, name, **values)


def _limit(bench: Bench, name: str, max_total: int, max_per_node: int | None = None) -> None:
    with bench.db.write() as conn:
        conn.execute(insert(limits).values(name=name, max_total=max_total, max_per_node=max_per_node))
        usage.ensure(conn, [limit_usage_key(name)])


def _used(bench: Bench) -> dict[str, tuple[int, int, int]]:
    with bench.db.read() as conn:
        found = usage.read(conn, _all_keys(conn), lock=False)
    return {key: (c[0], c[1], c[2]) for key, c in found.counters.items()}


def _all_keys(conn: Any) -> list[str]:
    from thresher.server.db.tables import usage as usage_table
    return list(conn.execute(select(usage_table.c.key)).scalars())


def _live(bench: Bench) -> Sequence[Row[*tuple[Any, ...]]]:
    with bench.db.read() as conn:
        return conn.execute(select(attempts).where(attempts.c.state.in_(["running", "killing"]))).all()


def _finish_all(bench: Bench) -> None:
    for attempt in _live(bench):
        bench.finish(attempt.node_id, attempt.id)


def test_a_submit_to_an_unknown_project_is_refused_unless_the_server_makes_it(bench: Bench) -> None:
    with bench.db.write() as conn, pytest.raises(BadInput) as refused:
        create_job(conn, check_spec({"name": "j", "project": "typo", "layers": [layer()]}), "tester")
    assert refused.value.errors[0]["field"] == "project" and "no project named 'typo'" in refused.value.errors[0]["message"]
    with bench.db.write() as conn:
        create_job(conn, check_spec({"name": "j", "project": "made", "folder": "sq010", "layers": [layer()]}), "t",
                   create_projects=True)
        made = conn.execute(select(projects.c.id).where(projects.c.name == "made")).scalar_one()
    assert project_key(made) in _used(bench)


def test_unknown_limits_and_pools_are_refused_naming_the_field(bench: Bench) -> None:
    _limit(bench, "nuke", 2)
    spec = {"name": "j", "layers": [layer(limits={"katana": 1}), layer("b", limits={"nuke": 3}),
                                    layer("c", pools=["nowhere"])]}
    with bench.db.write() as conn, pytest.raises(BadInput) as refused:
        create_job(conn, check_spec(spec), "tester")
    fields = {e["field"]: e["message"] for e in refused.value.errors}
    assert "no licence limit named 'katana'" in fields["layers.0.limits.katana"]
    assert "at most 2 of nuke" in fields["layers.1.limits.nuke"]
    assert "no pool named 'nowhere'" in fields["layers.2.pools"]


def test_a_project_cap_holds_and_frees_as_its_tasks_end(bench: Bench) -> None:
    capped = _project(bench, "capped", max_cores=5)
    job = bench.submit(project="capped", layers=[layer(frames="1-20")])
    nodes = [bench.node(f"n{i}", cores=4) for i in range(3)]
    got = [a for node in nodes for a in bench.work(node)]
    assert len(got) == 5 and all(a["job_id"] == job for a in got)
    assert _used(bench)[project_key(capped)][0] == 5
    _finish_all(bench)
    assert _used(bench)[project_key(capped)][0] == 0
    assert len([a for node in nodes for a in bench.work(node)]) == 5


def test_a_capped_project_leaves_the_node_to_others(bench: Bench) -> None:
    _project(bench, "capped", max_cores=1)
    _project(bench, "free")
    capped = bench.submit(project="capped", priority=100, layers=[layer(frames="1-8")])
    other = bench.submit(project="free", priority=0, layers=[layer(frames="1-8")])
    got = bench.work(bench.node("n", cores=4))
    assert sorted(a["job_id"] for a in got) == [capped, other, other, other]


def test_a_stake_guarantee_and_burst_cap_in_a_pool(bench: Bench) -> None:
    big = _project(bench, "big", weight=10)
    small = _project(bench, "small", weight=1)
    with bench.db.write() as conn:
        conn.execute(insert(project_pools).values(project_id=small, pool="default", guaranteed_cores=3, max_cores=4))
    bench.submit(project="big", layers=[layer(frames="1-50")])
    small_job = bench.submit(project="small", layers=[layer(frames="1-50")])
    got = bench.work(bench.node("n", cores=4))
    assert [a["job_id"] for a in got].count(small_job) == 3  # its guarantee first, then big's weight wins
    more = bench.work(bench.node("m", cores=8))
    assert [a["job_id"] for a in got + more].count(small_job) <= 4  # never past its burst cap
    used = _used(bench)
    assert used[stake_key(small, "default")][0] <= 4 and used[stake_key(big, "default")][0] >= 8


def test_shares_follow_the_weights_on_a_saturated_pool(bench: Bench) -> None:
    heavy = _project(bench, "heavy", weight=3)
    light = _project(bench, "light", weight=1)
    bench.submit(project="heavy", layers=[layer(frames="1-100")])
    bench.submit(project="light", layers=[layer(frames="1-100")])
    for i in range(4):
        bench.work(bench.node(f"n{i}", cores=4))
    used = _used(bench)
    assert (used[stake_key(heavy, "default")][0], used[stake_key(light, "default")][0]) == (12, 4)


def test_folder_priority_orders_a_projects_jobs_and_a_folder_cap_holds(bench: Bench) -> None:
    later = bench.submit(folder="dailies", priority=10, layers=[layer(frames="1-3")])
    first = bench.submit(folder="sq010", priority=90, layers=[layer(frames="1-3")])
    with bench.db.write() as conn:
        dailies = conn.execute(select(jobs.c.folder_id).where(jobs.c.id == later)).scalar_one()
        conn.execute(update(tasks).where(tasks.c.folder_id == dailies).values(folder_priority=5))
        from thresher.server.db.tables import folders
        conn.execute(update(folders).where(folders.c.id == dailies).values(priority=5, max_cores=2))
    got = bench.work(bench.node("n", cores=4))
    assert [a["job_id"] for a in got] == [later, later, first, first]
    assert _used(bench)[folder_key(dailies)][0] == 2


def test_an_urgent_job_goes_first_whatever_its_project_uses(bench: Bench) -> None:
    _project(bench, "a")
    _project(bench, "b")
    busy = bench.submit(project="a", layers=[layer(frames="1-10")])
    bench.work(bench.node("n0", cores=4))  # a now runs 4, b nothing
    bench.submit(project="b", layers=[layer(frames="1-10")])
    urgent = bench.submit(project="a", priority=0, layers=[layer(frames="1-2")])
    with bench.db.write() as conn:
        conn.execute(update(tasks).where(tasks.c.job_id == urgent).values(urgent=True))
        conn.execute(update(jobs).where(jobs.c.id == urgent).values(urgent=True))
    got = bench.work(bench.node("n1", cores=2))
    assert [a["job_id"] for a in got] == [urgent, urgent]
    assert busy


def test_licence_limits_farm_wide_and_per_node(bench: Bench) -> None:
    _limit(bench, "nuke", max_total=3, max_per_node=2)
    job = bench.submit(layers=[layer(frames="1-10", limits={"nuke": 1})])
    plain = bench.submit(layers=[layer(frames="1-10")])
    first = bench.work(bench.node("n0", cores=4))
    second = bench.work(bench.node("n1", cores=4))
    assert [a["job_id"] for a in first].count(job) == 2  # per node
    assert [a["job_id"] for a in second].count(job) == 1  # farm-wide: 3 in all
    assert [a["job_id"] for a in first + second].count(plain) == 5  # the rest of the cores still work
    assert _used(bench)[limit_usage_key("nuke")][2] == 3


def test_tasks_held_up_farm_wide_do_not_hide_the_tasks_behind_them(bench: Bench) -> None:
    """More tasks than a read holds (512 rows) wait first in the project's order, held up for every
    node: a licence at its total, a folder at its maximum. A node asking then gets the tasks behind them
    (the read leaves out what no node may take all round, `model.round_shut`), and the caps hold."""
    _limit(bench, "katana", max_total=1)
    held = bench.submit(priority=90, layers=[layer(frames="1-600", limits={"katana": 1})])
    full = bench.submit(folder="dailies", priority=80, layers=[layer(frames="1-600")])
    behind = bench.submit(priority=10, layers=[layer(frames="1-4")])
    with bench.db.write() as conn:
        from thresher.server.db.tables import folders
        dailies = conn.execute(select(jobs.c.folder_id).where(jobs.c.id == full)).scalar_one()
        conn.execute(update(tasks).where(tasks.c.folder_id == dailies).values(folder_priority=5))
        conn.execute(update(folders).where(folders.c.id == dailies).values(priority=5, max_cores=1))
    assert [a["job_id"] for a in bench.work(bench.node("n0", cores=1))] == [full]  # the folder first
    assert [a["job_id"] for a in bench.work(bench.node("n1", cores=1))] == [held]  # past the full folder
    got = bench.work(bench.node("n2", cores=4))
    assert [a["job_id"] for a in got] == [behind] * 4
    used = _used(bench)
    assert used[limit_usage_key("katana")][2] == 1 and used[folder_key(dailies)][0] == 1


def test_lost_and_killed_attempts_give_back_what_they_booked(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-4", limits={})])
    node = bench.node("n", cores=4)
    got = bench.work(node)
    with bench.db.write() as conn:
        lifecycle.lose_attempts(conn, [got[0]["attempt_id"]], "node went away", utcnow())
    bench.finish(node, got[1]["attempt_id"], "failed", 1)
    bench.finish(node, got[2]["attempt_id"], "killed", -9)
    assert _used(bench)[project_key(1)][0] == 1
    bench.finish(node, got[3]["attempt_id"])
    assert all(c == (0, 0, 0) for c in _used(bench).values())
    assert job


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_caps_and_limits_hold_when_dispatchers_race(bench: Bench) -> None:
    """Eight threads, each with its own connection and transaction (as several server processes on one
    PostgreSQL are), dispatch to their own nodes at once: a project capped at 6 cores and a licence of 4
    are never exceeded."""
    capped = _project(bench, "capped", max_cores=6)
    _limit(bench, "houdini-engine", max_total=4)
    bench.submit(project="capped", layers=[layer(frames="1-100")])
    bench.submit(layers=[layer(frames="1-100", limits={"houdini-engine": 1})])
    bench.submit(layers=[layer(frames="1-100")])
    nodes = [bench.node(f"n{i}", cores=4) for i in range(8)]
    start = threading.Barrier(len(nodes))
    errors: list[BaseException] = []

    def ask(node: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                with bench.db.write() as conn:
                    dispatch.work_for_nodes(conn, [node], utcnow())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    live = _live(bench)
    with bench.db.read() as conn:
        project_of = {r.id: r.project_id for r in conn.execute(select(tasks.c.id, tasks.c.project_id))}
        layer_limits = {r.id: r.limit_key for r in conn.execute(select(tasks.c.id, tasks.c.limit_key))}
    assert sum(a.cores for a in live if project_of[a.task_id] == capped) == 6
    assert sum(1 for a in live if layer_limits[a.task_id]) == 4
    used = _used(bench)
    assert used[project_key(capped)][0] == 6 and used[limit_usage_key("houdini-engine")][2] == 4
    assert len(live) == 32  # and no core idle: the rest went to the default project's plain tasks


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_transactions_locking_counters_in_several_statements_queue_instead_of_deadlocking(bench: Bench) -> None:
    """One transaction locks counter b then a (each statement in key order, as a batch's reports and
    then its dispatch do), another a then b: they must queue (the counters' advisory lock), not deadlock
    (PostgreSQL would abort one after its deadlock_timeout)."""
    _project(bench, "p")
    _limit(bench, "lic", max_total=1)
    a, b = sorted([project_key(1), limit_usage_key("lic")])
    first_holds_b = threading.Event()
    errors: list[BaseException] = []

    def waiting_for_a_lock() -> bool:
        with bench.db.peek() as conn:
            return bool(conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar())

    def first() -> None:
        try:
            with bench.db.write() as conn:
                usage.read(conn, [b], lock=True)
                first_holds_b.set()
                deadline = time.monotonic() + 30
                while not waiting_for_a_lock():  # the second is in its first lock now
                    assert time.monotonic() < deadline, "the second transaction never waited"
                    time.sleep(0.01)
                usage.read(conn, [a], lock=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def second() -> None:
        try:
            assert first_holds_b.wait(30)
            with bench.db.write() as conn:
                usage.read(conn, [a], lock=True)
                usage.read(conn, [b], lock=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_the_node_pool_decides_what_it_may_run(bench: Bench) -> None:
    with bench.db.write() as conn:
        studio.ensure_pool(conn, "gpu")
    gpu_only = bench.submit(layers=[layer(frames="1-2", pools=["gpu"])])
    anywhere = bench.submit(layers=[layer(frames="1-2")])
    plain = bench.node("plain", cores=4)
    got = assign_in_pool(bench, plain, "default")
    assert {a["job_id"] for a in got} == {anywhere}
    on_gpu = assign_in_pool(bench, bench.node("g", cores=4), "gpu")
    assert {a["job_id"] for a in on_gpu} == {gpu_only}


def assign_in_pool(bench: Bench, node: int, pool: str) -> list[dict[str, Any]]:
    from thresher.server.db.tables import nodes
    with bench.db.write() as conn:
        conn.execute(update(nodes).where(nodes.c.id == node).values(pool=pool))
        dispatch.forget_tag_keys(conn.engine)
        return assign(conn, node, utcnow())


def _pending(bench: Bench, job: int) -> tuple[str | None, dict[str, str | None]]:
    from thresher.server.views import get_job
    with bench.db.read() as conn:
        view = get_job(conn, job)
    return view.pending, {layer.name: layer.pending for layer in view.layers}


def test_every_waiting_job_says_why(bench: Bench) -> None:
    from thresher.server.db.tables import node_failures
    node = bench.node("n", cores=2, tags=["linux"])
    _project(bench, "capped", max_cores=1)
    _limit(bench, "nuke", 1)
    running = bench.submit(project="capped", layers=[layer(frames="1-3")])
    bench.work(node)  # capped runs 1 (its cap) and the node's other core takes nothing of it
    assert _pending(bench, running)[1]["render"] == "project capped at its cap (1/1 cores)"

    licence = bench.submit(layers=[layer(frames="1-2", limits={"nuke": 1})])
    bench.work(node)
    assert _pending(bench, licence) == (None, {"render": "licence nuke 1/1 in use"})  # it runs one task
    other = bench.submit(layers=[layer(frames="1", limits={"nuke": 1})])
    assert _pending(bench, other) == ("licence nuke 1/1 in use", {"render": "licence nuke 1/1 in use"})

    from thresher.server.db.tables import nodes
    maya = bench.node("m", cores=1, tags=["maya"])
    tagged = bench.submit(layers=[layer(frames="1", tags=["maya"])])
    with bench.db.write() as conn:
        conn.execute(update(nodes).where(nodes.c.id == maya).values(state="down"))
    assert _pending(bench, tagged)[0] == "no node that can run it is up and enabled (m cannot take work)"
    with bench.db.write() as conn:
        conn.execute(nodes.delete().where(nodes.c.id == maya))
    assert _pending(bench, tagged)[0] == "no registered node with tags maya"
    with bench.db.write() as conn:
        studio.ensure_pool(conn, "gpu")
    gpu = bench.node("g", cores=1)
    with bench.db.write() as conn:
        conn.execute(update(nodes).where(nodes.c.id == gpu).values(pool="gpu"))
    pooled = bench.submit(layers=[layer(frames="1", pools=["gpu"], resources={"cores": 1})])
    with bench.db.write() as conn:
        conn.execute(nodes.delete().where(nodes.c.id == gpu))
    assert _pending(bench, pooled)[0] == "no registered node in pool gpu"
    huge = bench.submit(layers=[layer(frames="1", resources={"cores": 2})])
    assert _pending(bench, huge)[0] == "waiting for a node with room (every node that can run it is busy)"

    blocked = bench.submit(layers=[layer(frames="1")])
    with bench.db.write() as conn:
        conn.execute(insert(node_failures).values(job_id=blocked, node_id=node, failures=3, blocked=True,
                                                  last_failed_at=utcnow()))
    assert _pending(bench, blocked)[0] == "every node that could run it has it blocklisted (n)"

    staged = bench.submit(layers=[layer("sim", frames="1", resources={"cores": 2}), layer("render", depends_on=["sim"])])
    assert _pending(bench, staged)[1]["render"] == "waiting for layer sim"
    after = bench.submit(depends_on=[staged], layers=[layer()])
    assert _pending(bench, after)[0] == f"waiting for job {staged} (queued)"

    paused = bench.submit(layers=[layer()])
    bench.act(lifecycle.pause_job, paused)
    assert _pending(bench, paused)[0] == "the job is paused"
