"""Dependencies on real databases (SQLite and PostgreSQL): every kind and mode, a failed dependency
that blocks instead of stranding, retries that release by themselves, drops, and cycles refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select
from tests.api.test_dispatch_db import Bench, layer

from thresher.server import dependencies, lifecycle
from thresher.server.clock import utcnow
from thresher.server.db.tables import dependencies as edges_table
from thresher.server.db.tables import tasks
from thresher.server.errors import BadInput
from thresher.server.views import get_job


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def _run_all(bench: Bench, node: int, status: str = "succeeded", *, job: int | None = None) -> list[dict[str, Any]]:
    """Give the node everything it may take now and report each with `status`."""
    got = [a for a in bench.work(node) if job is None or a["job_id"] == job]
    for a in got:
        bench.finish(node, a["attempt_id"], status, 0 if status == "succeeded" else 1)
    return got


def _pending(bench: Bench, job_id: int) -> str | None:
    with bench.db.read() as conn:
        return get_job(conn, job_id).pending


def test_a_job_on_a_failed_job_is_blocked_then_released_by_its_retry(bench: Bench) -> None:
    first = bench.submit(layers=[layer("render", "1", retries=0)])
    second = bench.submit(depends_on=[first], layers=[layer("comp", "1")])
    node = bench.node("n", cores=8)
    _run_all(bench, node, "failed")
    assert bench.job_state(first) == "failed"
    assert bench.job_state(second) == "blocked"
    assert _pending(bench, second) == f"blocked: job {first} failed"
    assert bench.work(node) == []
    bench.act(lifecycle.retry_tasks, first, None)
    assert bench.job_state(second) == "waiting"          # the dependency runs again: no longer blocked
    assert _pending(bench, second) and "waiting for job" in (_pending(bench, second) or "")
    (again,) = _run_all(bench, node)
    assert again["job_id"] == first
    (comp,) = _run_all(bench, node)                       # released by itself
    assert comp["job_id"] == second and bench.job_state(second) == "succeeded"


def test_a_layer_on_another_jobs_failed_layer_says_which(bench: Bench) -> None:
    first = bench.submit(layers=[layer("render", "1", retries=0), layer("other", "1")])
    second = bench.submit(layers=[layer("prep", "1"), layer("comp", "1", depends_on=[{"job": first, "layer": "render"}])])
    node = bench.node("n", cores=1)
    for _ in range(3):
        got = bench.work(node)
        for a in got:
            bench.finish(node, a["attempt_id"], "failed" if a["layer"] == "render" else "succeeded",
                         1 if a["layer"] == "render" else 0)
    assert bench.job_state(second) == "blocked"
    assert _pending(bench, second) == f"blocked: job {first} layer render failed"
    bench.act(lifecycle.retry_tasks, first, None)
    _run_all(bench, node)
    (comp,) = _run_all(bench, node)
    assert comp["layer"] == "comp" and bench.job_state(second) == "succeeded"


def test_a_killed_dependency_blocks_and_on_finished_does_not_wait_for_success(bench: Bench) -> None:
    first = bench.submit(layers=[layer("render", "1")])
    strict = bench.submit(depends_on=[first], layers=[layer("a", "1")])
    lenient = bench.submit(depends_on=[{"job": first, "on": "finished"}], layers=[layer("b", "1")])
    bench.act(lifecycle.kill_job, first)
    assert bench.job_state(strict) == "blocked" and _pending(bench, strict) == f"blocked: job {first} killed"
    node = bench.node("n", cores=8)
    (b,) = _run_all(bench, node)
    assert b["job_id"] == lenient and bench.job_state(lenient) == "succeeded"


def test_blocked_is_passed_down_a_chain_of_jobs(bench: Bench) -> None:
    first = bench.submit(layers=[layer("render", "1", retries=0)])
    second = bench.submit(depends_on=[first], layers=[layer("a", "1")])
    third = bench.submit(depends_on=[second], layers=[layer("b", "1")])
    node = bench.node("n")
    _run_all(bench, node, "failed")
    assert bench.job_state(third) == "blocked"
    assert _pending(bench, third) == f"blocked: job {second} is blocked"


def test_a_dependency_on_a_job_that_failed_already_blocks_at_submit(bench: Bench) -> None:
    first = bench.submit(layers=[layer("render", "1", retries=0)])
    node = bench.node("n")
    _run_all(bench, node, "failed")
    late = bench.submit(depends_on=[first], layers=[layer("a", "1")])
    assert bench.job_state(late) == "blocked"
    done = bench.submit(layers=[layer("x", "1")])
    _run_all(bench, node)
    after = bench.submit(depends_on=[done], layers=[layer("y", "1")])
    assert bench.task_states(after) == ["ready"]


def test_frame_by_frame_each_task_waits_only_for_the_frames_it_covers(bench: Bench) -> None:
    # sim in chunks of 2 (1-2, 3-4, 5-6), render in chunks of 3 (1-3, 4-6): render 1-3 needs sim 1-2 and 3-4
    job = bench.submit(layers=[layer("sim", "1-6", chunk=2),
                               layer("render", "1-6", chunk=3, depends_on=[{"layer": "sim", "frames": True}])])
    with bench.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(edges_table)).scalar() == 4  # overlaps, not 2 x 3
    node = bench.node("n", cores=1)
    (sim1,) = bench.work(node)
    bench.finish(node, sim1["attempt_id"])
    (sim2,) = bench.work(node)
    assert sim2["layer"] == "sim"
    bench.finish(node, sim2["attempt_id"])
    # render 1-3 may start while sim 5-6 still waits its turn
    assert bench.task_states(job) == ["succeeded", "succeeded", "ready", "ready", "waiting"]
    for _ in range(3):
        _run_all(bench, node)
    assert bench.job_state(job) == "succeeded"


def test_frame_by_frame_across_jobs_and_a_failed_frame_blocks(bench: Bench) -> None:
    first = bench.submit(layers=[layer("sim", "1-2", args={"command": ["echo", "{frame}"]},
                                       retries=0)])
    second = bench.submit(layers=[layer("render", "1-2", depends_on=[{"job": first, "layer": "sim", "frames": True}])])
    node = bench.node("n", cores=1)
    a = bench.work(node)[0]
    assert a["job_id"] == first
    bench.finish(node, a["attempt_id"])
    assert bench.task_states(second) == ["ready", "waiting"]
    b = [x for x in bench.work(node) if x["job_id"] == first][0]
    bench.finish(node, b["attempt_id"], "failed", 1)
    assert bench.job_state(second) in ("running", "queued", "blocked")
    _run_all(bench, node, job=second)
    assert bench.job_state(second) == "blocked"
    assert _pending(bench, second) == f"blocked: job {first} layer sim frames 2 failed"


def test_a_blocked_reason_names_every_failed_frame_it_waits_for(bench: Bench) -> None:
    """Frames 1 and 2 of sim both failed and the reason said `frames 1 failed`, as if frame 2 were fine."""
    first = bench.submit(layers=[layer("sim", "1-3", args={"command": ["echo", "{frame}"]}, retries=0)])
    second = bench.submit(layers=[layer("render", "1-3", depends_on=[{"job": first, "layer": "sim", "frames": True}])])
    node = bench.node("n", cores=8)
    for a in bench.work(node):
        bench.finish(node, a["attempt_id"], "failed" if a["frames"] in ("1", "2") else "succeeded",
                     1 if a["frames"] in ("1", "2") else 0)
    _run_all(bench, node, job=second)
    assert bench.job_state(second) == "blocked"
    assert _pending(bench, second) == f"blocked: job {first} layer sim frames 1-2 failed"


def test_dropping_the_only_dependency_releases_the_job(bench: Bench) -> None:
    first = bench.submit(layers=[layer("render", "1", retries=0)])
    second = bench.submit(depends_on=[first], layers=[layer("a", "1"), layer("b", "1", depends_on=["a"])])
    node = bench.node("n")
    _run_all(bench, node, "failed")
    assert bench.job_state(second) == "blocked"
    with bench.db.read() as conn:
        rows = dependencies.edges(conn, second)
    assert {(r.kind, r.target_job_id, r.target_layer) for r in rows} == {("job", first, None), ("layer", second, "a")}
    with bench.db.write() as conn:
        assert dependencies.drop(conn, second, on_job=first) == 1
        lifecycle.refresh_job(conn, second, utcnow())
    assert bench.task_states(second) == ["ready", "waiting"]  # b still waits for a
    with bench.db.write() as conn, pytest.raises(BadInput):
        dependencies.drop(conn, second, layer="nope")


def test_a_cycle_between_layers_through_a_frame_dependency_is_refused(bench: Bench) -> None:
    with pytest.raises(BadInput) as info:
        bench.submit(layers=[layer("a", "1", depends_on=["b"]), layer("b", "1", depends_on=[{"layer": "a", "frames": True}])])
    assert info.value.errors[0]["field"] == "layers" and "cycle" in info.value.errors[0]["message"]


def test_a_dependency_on_no_job_or_no_layer_names_its_field(bench: Bench) -> None:
    first = bench.submit(layers=[layer("render", "1")])
    with pytest.raises(BadInput) as info:
        bench.submit(layers=[layer("a", "1", depends_on=[{"job": first, "layer": "nope"}])])
    assert info.value.errors == [{"field": "layers.0.depends_on.0", "message": f"job {first} has no layer named 'nope'"}]
    with pytest.raises(BadInput) as info:
        bench.submit(depends_on=[first + 1], layers=[layer("a", "1")])  # its own id-to-be: no such job yet
    assert info.value.errors[0]["field"] == "depends_on.0"


def test_jobs_made_before_migration_5_keep_their_dependencies(bench: Bench) -> None:
    """The old columns still say what the spec said; the rows are what is released."""
    first = bench.submit(layers=[layer("render", "1")])
    second = bench.submit(depends_on=[first], layers=[layer("a", "1")])
    with bench.db.read() as conn:
        assert get_job(conn, second).depends_on == [first]
        assert conn.execute(select(tasks.c.state).where(tasks.c.job_id == second)).scalar() == "waiting"


def test_a_layer_on_finished_runs_after_its_target_failed(bench: Bench) -> None:
    job = bench.submit(layers=[layer("render", "1", retries=0),
                               layer("report", "1", depends_on=[{"layer": "render", "on": "finished"}])])
    node = bench.node("n")
    _run_all(bench, node, "failed")
    (report,) = _run_all(bench, node)
    assert report["layer"] == "report" and bench.task_states(job) == ["failed", "succeeded"]
    assert bench.job_state(job) == "failed"  # its own render failed: the job says so, nothing strands


def test_releasing_reads_the_edges_through_their_indexes(tmp_path: Path) -> None:
    """What a finish report runs for frame-by-frame edges looks them up (SEARCH), never reads the table
    through (SCAN): a 10,000-task layer following another costs each report a few index probes."""
    from sqlalchemy import create_engine

    from thresher.server.db.queries import dependencies as q
    from thresher.server.db.tables import metadata
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    metadata.create_all(engine)
    release_where = q.RELEASE_TASKS.whereclause
    assert release_where is not None
    with engine.connect() as conn:
        for statement, params in ((q.WAITERS_OF_TASKS, {"task_ids": [1, 2]}),
                                  (select(tasks.c.id).where(release_where), {"b_task_ids": [1, 2]}),
                                  (q.COARSE_OF_JOB, {"job_id": 1}), (q.LAYER_FACTS, {"layer_id": 1}),
                                  (q.WAITER_JOBS_OF, {"job_id": 1})):
            sql = statement.params(params).compile(engine, compile_kwargs={"literal_binds": True})
            plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "SCAN dependencies" not in plan and "SCAN tasks" not in plan, (statement, plan)
    engine.dispose()


def test_frame_by_frame_on_a_wedged_layer_waits_for_every_value_of_its_frame(bench: Bench) -> None:
    job = bench.submit(layers=[layer("sim", "1-2", wedge=[1, 2], args={"command": ["echo", "{frame}", "{wedge}"]}),
                               layer("render", "1-2", depends_on=[{"layer": "sim", "frames": True}])])
    with bench.db.read() as conn:
        sims = conn.execute(select(tasks.c.id, tasks.c.frames, tasks.c.part).where(
            tasks.c.job_id == job, tasks.c.state == "ready").order_by(tasks.c.id)).all()
    assert len(sims) == 4
    node = bench.node("n", cores=1)
    done: list[str] = []
    while True:
        got = bench.work(node)
        if not got:
            break
        (a,) = got
        if a["layer"] == "render":
            # every wedge value of its frame is done
            assert sum(1 for f in done if f == a["frames"]) == 2, (a, done)
        else:
            done.append(a["frames"])
        bench.finish(node, a["attempt_id"])
    assert bench.job_state(job) == "succeeded"


def test_a_killed_frame_blocks_its_follower_until_its_edges_are_dropped(bench: Bench) -> None:
    first = bench.submit(layers=[layer("sim", "1-2")])
    second = bench.submit(layers=[layer("render", "1-2", depends_on=[{"job": first, "layer": "sim", "frames": True}])])
    with bench.db.read() as conn:
        sim = conn.execute(select(tasks.c.id).where(tasks.c.job_id == first).order_by(tasks.c.id)).scalars().all()
        render = conn.execute(select(tasks.c.id).where(tasks.c.job_id == second).order_by(tasks.c.id)).scalars().all()
    bench.act(lifecycle.kill_task, sim[0])
    assert bench.job_state(second) == "blocked"
    assert _pending(bench, second) == f"blocked: job {first} layer sim frames 1 killed"
    with bench.db.write() as conn:
        assert dependencies.drop(conn, second, task_id=render[0]) == 1
        lifecycle.refresh_job(conn, second, utcnow())
    assert bench.task_states(second) == ["ready", "waiting"]  # frame 2 still follows sim 2
    with bench.db.write() as conn:
        assert dependencies.drop(conn, second, layer="render") == 1
        lifecycle.refresh_job(conn, second, utcnow())
    assert bench.task_states(second) == ["ready", "ready"]


def _run_layers(bench: Bench, node: int, failing: set[str]) -> None:
    """Run everything the node may take, in turns, failing the tasks of the `failing` layers."""
    while got := bench.work(node):
        for a in got:
            bad = a["layer"] in failing
            bench.finish(node, a["attempt_id"], "failed" if bad else "succeeded", 1 if bad else 0)


def test_an_edge_shows_the_state_of_the_layer_or_task_it_waits_for_not_its_job(bench: Bench) -> None:
    """The tester's `job 3 layer sim [failed]` although sim succeeded 2/2: the job failed by another layer."""
    first = bench.submit(layers=[layer("sim", "1-2"), layer("a", "1", retries=0), layer("b", "1", depends_on=["a"])])
    second = bench.submit(depends_on=[first], layers=[layer("render", "1-2", depends_on=[
        {"job": first, "layer": "sim", "frames": True}, {"job": first, "layer": "a"}])])
    third = bench.submit(layers=[layer("comp", "1")])
    with bench.db.read() as conn:
        sim_task = conn.execute(select(tasks.c.id).where(tasks.c.job_id == first).order_by(tasks.c.id)).scalars().all()[0]
        (comp,) = conn.execute(select(tasks.c.id).where(tasks.c.job_id == third)).scalars()
    with bench.db.write() as conn:
        dependencies.add_task_edge(conn, third, comp, sim_task, "success")
        lifecycle.refresh_job(conn, third, utcnow())
    node = bench.node("n", cores=8)
    _run_layers(bench, node, failing={"a"})
    assert bench.job_state(first) == "failed" and bench.job_state(third) == "succeeded"
    with bench.db.read() as conn:
        shown = {(e.kind, e.target_layer): e for e in dependencies.view(conn, second, None).waits_for}
        on_task = dependencies.view(conn, third, None).waits_for
    assert {key: (e.target_state, e.target_job_state) for key, e in shown.items()} == {
        ("frame", "sim"): ("succeeded", "failed"), ("layer", "a"): ("failed", "failed"),
        ("job", None): ("failed", "failed")}
    assert [(e.kind, e.target_task, e.target_state) for e in on_task] == [("task", sim_task, "succeeded")]


def test_a_failed_jobs_layer_left_waiting_on_a_failed_layer_still_says_why(bench: Bench) -> None:
    """`thresher why` said `job 31 (failed): nothing waits` once the job failed; the job page likewise."""
    job = bench.submit(layers=[layer("a", "1", retries=0), layer("b", "1", depends_on=["a"])])
    _run_layers(bench, bench.node("n"), failing={"a"})
    with bench.db.read() as conn:
        shown = get_job(conn, job)
    assert shown.state == "failed"
    assert {lay.name: lay.pending for lay in shown.layers} == {"a": None, "b": "blocked: layer a failed"}
    assert shown.pending == "blocked: layer a failed"
