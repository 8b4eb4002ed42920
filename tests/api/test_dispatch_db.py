"""The dispatch rule and task lifecycle against real databases (SQLite and PostgreSQL), without HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from tests.support.dispatching import assign, finish_attempt, kill_list, work_for

from thresher.server import dispatch, lifecycle
from thresher.server.clock import utcnow
from thresher.server.db.tables import attempts, nodes, tasks
from thresher.server.main import prepare
from thresher.server.nodes import Beat, heartbeats
from thresher.server.submit import check_spec, create_job
from thresher.wire.agent import Heartbeat


class Bench:
    """A server's state without its HTTP layer: submit, register nodes, dispatch, report."""

    def __init__(self, db_url: str, data: Path) -> None:
        self.server = prepare(db_url, data)
        self.db = self.server.db

    def submit(self, **job: Any) -> int:
        spec = {"name": "job", **job}
        with self.db.write() as conn:
            return create_job(conn, check_spec(spec), "tester", create_projects=True)

    def node(self, name: str, cores: int = 4, memory_mb: int = 16000, gpus: int = 0, tags: list[str] | None = None) -> int:
        now = utcnow()
        with self.db.write() as conn:
            key = conn.execute(insert(nodes).values(
                name=name, hostname=name, os="linux", instance_id=name, cores=cores, memory_mb=memory_mb,
                gpus=[{"index": i, "name": "gpu", "memory_mb": 1000, "uuid": f"{name}-{i}"} for i in range(gpus)],
                tags=tags or [], state="up", admin_state="enabled", last_seen=now, registered_at=now,
            )).inserted_primary_key
            assert key is not None
            return key[0]

    def work(self, node_id: int) -> list[dict[str, Any]]:
        with self.db.write() as conn:
            return assign(conn, node_id, utcnow())

    def finish(self, node_id: int, attempt_id: int, status: str = "succeeded", exit_code: int = 0) -> dict[str, Any]:
        with self.db.write() as conn:
            return finish_attempt(conn, node_id, {"attempt_id": attempt_id, "status": status,
                                                            "exit_code": exit_code, "log_size": 0}, utcnow())

    def task_states(self, job_id: int) -> list[str]:
        with self.db.read() as conn:
            return [r.state for r in conn.execute(select(tasks.c.state).where(tasks.c.job_id == job_id).order_by(tasks.c.id))]

    def job_state(self, job_id: int) -> str:
        from thresher.server.views import get_job
        with self.db.read() as conn:
            return get_job(conn, job_id).state

    def act(self, fn: Any, *args: Any) -> Any:
        with self.db.write() as conn:
            return fn(conn, *args, utcnow())


def layer(name: str = "render", frames: str = "1-4", **kw: Any) -> dict[str, Any]:
    return {"name": name, "frames": frames, "args": {"command": ["echo", "{frame}"]}, **kw}


@pytest.fixture
def bench(db_url: str, tmp_path: Path) -> Iterator[Bench]:
    b = Bench(db_url, tmp_path / "data")
    yield b
    b.db.dispose()


def test_priority_first_then_submission_order(bench: Bench) -> None:
    low = bench.submit(priority=10, layers=[layer(frames="1-2")])
    first = bench.submit(priority=90, layers=[layer(frames="1-2")])
    second = bench.submit(priority=90, layers=[layer(frames="1-2")])
    node = bench.node("n1", cores=1)
    order = []
    for _ in range(6):
        (a,) = bench.work(node)
        order.append(a["job_id"])
        bench.finish(node, a["attempt_id"])
    assert order == [first, first, second, second, low, low]
    assert bench.job_state(low) == "succeeded"


def test_several_tasks_fit_one_node_by_cores_memory_and_gpus(bench: Bench) -> None:
    bench.submit(layers=[layer(frames="1-10", resources={"cores": 8, "memory": "8G"})])
    big = bench.node("big", cores=32, memory_mb=64_000)
    assert len(bench.work(big)) == 4
    assert bench.work(big) == []  # full until something ends
    gpu_node = bench.node("gpu", cores=8, gpus=2)
    gpu_job = bench.submit(priority=60, layers=[layer(frames="1-3", resources={"cores": 1, "gpus": 1})])
    got = bench.work(gpu_node)
    assert [a["job_id"] for a in got] == [gpu_job, gpu_job]
    assert sorted(g for a in got for g in a["gpus"]) == [0, 1]


def test_required_tags_route_work(bench: Bench) -> None:
    job = bench.submit(layers=[layer(tags=["houdini"])])
    plain = bench.node("plain")
    tagged = bench.node("fx", tags=["houdini", "linux"])
    assert bench.work(plain) == []
    assert {a["job_id"] for a in bench.work(tagged)} == {job}


def test_layer_dependencies_release_after_the_layer_completes(bench: Bench) -> None:
    job = bench.submit(layers=[layer("render", "1-2"), layer("comp", "1-2", depends_on=["render"])])
    node = bench.node("n", cores=8)
    first = bench.work(node)
    assert {a["layer"] for a in first} == {"render"}
    bench.finish(node, first[0]["attempt_id"])
    assert bench.work(node) == []
    bench.finish(node, first[1]["attempt_id"])
    second = bench.work(node)
    assert {a["layer"] for a in second} == {"comp"} and len(second) == 2
    for a in second:
        bench.finish(node, a["attempt_id"])
    assert bench.job_state(job) == "succeeded"


def test_job_dependencies(bench: Bench) -> None:
    first = bench.submit(layers=[layer(frames="1")])
    second = bench.submit(depends_on=[first], priority=100, layers=[layer(frames="1")])
    assert bench.job_state(second) == "waiting"
    node = bench.node("n", cores=8)
    (a,) = bench.work(node)
    assert a["job_id"] == first
    bench.finish(node, a["attempt_id"])
    (b,) = bench.work(node)
    assert b["job_id"] == second


def test_retries_keep_every_attempt_then_fail(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1", retries=2)])
    node = bench.node("n")
    for _ in range(3):
        (a,) = bench.work(node)
        bench.finish(node, a["attempt_id"], "failed", 1)
    assert bench.work(node) == []
    assert bench.task_states(job) == ["failed"] and bench.job_state(job) == "failed"
    with bench.db.read() as conn:
        assert [r.number for r in conn.execute(select(attempts.c.number).order_by(attempts.c.id))] == [1, 2, 3]
    bench.act(lifecycle.retry_tasks, job, None)
    assert bench.task_states(job) == ["ready"]


def _task_row(bench: Bench, job_id: int) -> Any:
    with bench.db.read() as conn:
        return conn.execute(select(tasks).where(tasks.c.job_id == job_id)).one()


def _attempt_reasons(bench: Bench, task_id: int) -> list[str | None]:
    with bench.db.read() as conn:
        return list(conn.execute(select(attempts.c.reason).where(attempts.c.task_id == task_id)
                                 .order_by(attempts.c.number)).scalars())


def test_a_task_whose_node_goes_away_again_and_again_fails_with_that_reason(bench: Bench) -> None:
    """Reproduced before: a task that kills its node was requeued forever (ready, tries 0, lost 3...)."""
    job = bench.submit(layers=[layer(frames="1", retries=5)])
    nodes_ = [bench.node(f"n{i}") for i in range(3)]
    for number, node in enumerate(nodes_, 1):
        (a,) = bench.work(node)
        changes = bench.act(lifecycle.lose_attempts, [a["attempt_id"]], f"node n{number - 1} stopped answering")
        assert changes.ready == (1 if number < 3 else 0)
    task = _task_row(bench, job)
    assert (task.state, task.tries, task.lost) == ("failed", 0, 3)
    assert bench.job_state(job) == "failed"
    reasons = _attempt_reasons(bench, task.id)
    assert reasons[:2] == ["node n0 stopped answering", "node n1 stopped answering"]
    assert reasons[2] == ("node n2 stopped answering; lost 3 times (its node went away while running it): "
                          "the task failed")
    assert bench.work(bench.node("spare")) == []  # nothing more is handed out
    bench.act(lifecycle.retry_tasks, job, None)  # a wrangler's retry: a fresh count of tries and losses
    task = _task_row(bench, job)
    assert (task.state, task.lost) == ("ready", 0)


def test_a_task_reported_lost_by_its_agents_fails_at_the_limit(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1")])
    node = bench.node("n")
    for _ in range(2):
        (a,) = bench.work(node)
        with bench.db.write() as conn:
            _, changes = lifecycle.finish_attempts(conn, node, [{"attempt_id": a["attempt_id"], "status": "lost",
                                                                 "reason": "agent restarted", "log_size": 0}],
                                                   utcnow(), max_losses=2)
    task = _task_row(bench, job)
    assert (task.state, task.lost, changes.ready) == ("failed", 2, 0)
    last = _attempt_reasons(bench, task.id)[-1]
    assert last is not None and last.startswith("agent restarted; lost 2 times")
    assert bench.job_state(job) == "failed"


def test_a_report_applies_once(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1")])
    node = bench.node("n")
    (a,) = bench.work(node)
    bench.finish(node, a["attempt_id"], "succeeded")
    bench.finish(node, a["attempt_id"], "failed", 1)  # a retried or confused second report changes nothing
    assert bench.task_states(job) == ["succeeded"]


def test_lost_attempts_requeue_without_counting_a_try_and_a_late_success_is_kept(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1", retries=0)])
    dead = bench.node("dead")
    alive = bench.node("alive")
    (a,) = bench.work(dead)
    changes = bench.act(lifecycle.lose_attempts, [a["attempt_id"]], "node stopped answering")
    assert changes.ready == 1
    (b,) = bench.work(alive)
    assert b["task_id"] == a["task_id"]
    # The dead node's late success is kept (its work is done: model/late_report.py) and the re-run is
    # stopped; the re-run's own success afterwards is only noted (at most one success per task).
    bench.finish(dead, a["attempt_id"], "succeeded")
    assert bench.task_states(job) == ["succeeded"]
    bench.finish(alive, b["attempt_id"])
    assert bench.task_states(job) == ["succeeded"]


def test_kill_pause_resume_skip(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-4")])
    node = bench.node("n", cores=1)
    (a,) = bench.work(node)
    bench.act(lifecycle.pause_job, job)
    assert bench.work(node) == [] and bench.job_state(job) == "running"
    bench.finish(node, a["attempt_id"])
    assert bench.job_state(job) == "paused"
    bench.act(lifecycle.resume_job, job)
    (b,) = bench.work(node)
    bench.act(lifecycle.skip_task, b["task_id"] + 1)
    bench.act(lifecycle.kill_job, job)
    with bench.db.read() as conn:
        assert kill_list(conn, node, utcnow()) == [b["attempt_id"]]
    bench.finish(node, b["attempt_id"], "killed")
    assert bench.task_states(job) == ["succeeded", "killed", "skipped", "killed"]
    assert bench.job_state(job) == "killed"


def test_two_dispatchers_never_hand_out_one_task_twice(bench: Bench) -> None:
    bench.submit(layers=[layer(frames="1-200")])
    node_ids = [bench.node(f"n{i}", cores=4) for i in range(8)]
    seen: list[int] = []
    lock = threading.Lock()

    def drain(node_id: int) -> None:
        while True:
            got = bench.work(node_id)
            if not got:
                return
            with lock:
                seen.extend(a["task_id"] for a in got)
            for a in got:
                bench.finish(node_id, a["attempt_id"])

    threads = [threading.Thread(target=drain, args=(n,)) for n in node_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 200


def test_the_last_two_tasks_ending_at_once_complete_the_layer_and_the_job(bench: Bench) -> None:
    """Two reports in flight together (two agents, or two server processes on PostgreSQL): whichever
    commits last must see the other and complete the layer, else the job never ends."""
    job = bench.submit(layers=[layer(frames="1-2"), layer("encode", frames="1", depends_on=["render"])])
    node = bench.node("n1", cores=2)
    first, second = bench.work(node)
    other = threading.Thread(target=bench.finish, args=(node, second["attempt_id"]))
    with bench.db.write() as conn:
        finish_attempt(conn, node, {"attempt_id": first["attempt_id"], "status": "succeeded",
                                              "exit_code": 0, "log_size": 0}, utcnow())
        other.start()
        other.join(timeout=1.0)  # it waits for this transaction (PostgreSQL: the job row; SQLite: the writer)
    other.join()
    assert bench.task_states(job) == ["succeeded", "succeeded", "ready"]
    (encode,) = bench.work(node)
    bench.finish(node, encode["attempt_id"])
    assert bench.job_state(job) == "succeeded"


def test_reports_settled_after_their_commit_and_stuck_jobs_found(bench: Bench) -> None:
    """The agents' path: reports commit without deriving the job (`settle_now=False`); the check after the
    commit finds what to derive, and a job left running by a crash in between is found by housekeeping."""
    job = bench.submit(layers=[layer(frames="1-2"), layer("encode", frames="1", depends_on=["render"])])
    node = bench.node("n1", cores=2)
    first, second = bench.work(node)
    touched: list[set[tuple[int, int]]] = []
    for assignment in (first, second):
        with bench.db.write() as conn:
            _, changes = lifecycle.finish_attempts(conn, node, [{"attempt_id": assignment["attempt_id"], "status": "succeeded",
                                                                  "exit_code": 0, "log_size": 0}], utcnow(), settle_now=False)
        touched.append(changes.settle)
    assert bench.task_states(job) == ["succeeded", "succeeded", "waiting"]  # nothing derived yet
    with bench.db.read() as conn:
        assert lifecycle.unsettled_jobs(conn, touched[1]) == [job]  # the last report's check sees both
        assert lifecycle.stuck_jobs(conn) == [job]  # running, nothing queued or running
    changes = bench.act(lambda conn, now: lifecycle.refresh_jobs(conn, [job], now))
    assert changes.ready == 1 and bench.task_states(job) == ["succeeded", "succeeded", "ready"]
    with bench.db.read() as conn:
        assert lifecycle.stuck_jobs(conn) == []


def test_reports_checked_together_each_learn_only_their_own_jobs(bench: Bench) -> None:
    """The server's check after a moment's reports (`context._check_together`: one statement for every
    pair on PostgreSQL): a report that completed a layer names its job, and only that report waits for
    the job to be derived; one whose layer still runs names nothing; a layer completed while the job
    still has work names its job too (what waits on the layer may start)."""
    from thresher.server.context import _check_together

    done = bench.submit(layers=[layer(frames="1")])
    busy = bench.submit(layers=[layer(frames="1-3"), layer("encode", frames="1-2")])
    node = bench.node("n1", cores=8)
    got = {a["task_id"]: a for a in bench.work(node)}
    with bench.db.read() as conn:
        layer_of = {r.id: (r.job_id, r.layer_id) for r in conn.execute(select(tasks.c.id, tasks.c.job_id,
                                                                                tasks.c.layer_id))}
    by_layer: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for task_id, assignment in sorted(got.items()):
        by_layer.setdefault(layer_of[task_id], []).append(assignment)
    (done_layer,) = [pair for pair in by_layer if pair[0] == done]
    render, encode = sorted(pair for pair in by_layer if pair[0] == busy)
    touched: list[set[tuple[int, int]]] = []
    for pair, finished in ((done_layer, by_layer[done_layer]), (render, by_layer[render][:1]),
                           (encode, by_layer[encode])):
        with bench.db.write() as conn:
            _, changes = lifecycle.finish_attempts(conn, node, [
                {"attempt_id": a["attempt_id"], "status": "succeeded", "exit_code": 0, "log_size": 0}
                for a in finished], utcnow(), settle_now=False)
        assert changes.settle == {pair}
        touched.append(changes.settle)
    with bench.db.peek() as conn:
        assert _check_together(conn, touched) == [{done}, set(), {busy}]
        assert lifecycle.unsettled_layers(conn, set().union(*touched)) == {done_layer, encode}
        assert lifecycle.unsettled_jobs(conn, set().union(*touched)) == sorted([done, busy])
        assert _check_together(conn, [set()]) == [set()]


# -- requests and reports answered together (one write batch of the server) ----------------------

def _dry(bench: Bench, fn: Any) -> Any:
    """Run fn(conn) in a transaction that is rolled back, so two ways can be tried on the same state."""
    with bench.db.engine.connect() as conn:
        tx = conn.begin()
        try:
            return fn(conn)
        finally:
            tx.rollback()


def _tasks_by_node(answers: list[dispatch.Answer]) -> list[list[tuple[int, list[int]]]]:
    return [sorted((a["task_id"], a["gpus"]) for a in answer.assignments) for answer in answers]


def test_requests_answered_together_get_what_they_would_get_one_by_one(bench: Bench) -> None:
    """Nodes of different sizes, tags and GPUs asking in one batch: each gets exactly what it would get
    asking alone, one after the other in the same order. (Alone, a node reads as many candidates as it
    has free cores; the scene keeps every node's pick within that, where both ways must agree.)"""
    bench.submit(priority=20, layers=[layer(frames="1-6", resources={"cores": 2})])
    bench.submit(priority=80, layers=[layer(frames="1-3", tags=["houdini"], resources={"cores": 3})])
    bench.submit(priority=50, layers=[layer(frames="1-4", resources={"cores": 1, "gpus": 1})])
    bench.submit(priority=50, layers=[layer(frames="1-2", resources={"cores": 1, "memory": "30G"})])
    order = [bench.node("fx", cores=8, tags=["houdini"]), bench.node("small", cores=3),
             bench.node("gpu", cores=2, gpus=2), bench.node("big", cores=16, memory_mb=64_000)]
    together = _dry(bench, lambda conn: dispatch.work_for_nodes(conn, order, utcnow()))
    alone = _dry(bench, lambda conn: [work_for(conn, n, utcnow()) for n in order])
    assert _tasks_by_node(together) == _tasks_by_node(alone)
    assert all(len(answer.assignments) > 0 for answer in together)  # every node got something here
    claimed = [t for per_node in _tasks_by_node(together) for t, _ in per_node]
    assert len(claimed) == len(set(claimed))  # no task twice


def test_a_node_asking_twice_in_one_batch_gets_its_cores_once(bench: Bench) -> None:
    bench.submit(layers=[layer(frames="1-20")])
    node = bench.node("n", cores=4)
    first, second = _dry(bench, lambda conn: dispatch.work_for_nodes(conn, [node, node], utcnow()))
    assert len(first.assignments) == 4 and second.assignments == []


def test_nodes_left_out_of_a_cut_candidate_read_ask_alone(bench: Bench) -> None:
    """The candidates read for a batch are cut at `candidate_rows`; a node that found nothing among them
    reads the queue again for itself, so a long queue never starves it."""
    bench.submit(layers=[layer(frames="1-10")])
    nodes_ = [bench.node(f"n{i}", cores=2) for i in range(3)]
    answers = _dry(bench, lambda conn: dispatch.work_for_nodes(conn, nodes_, utcnow(),
                                                                dispatch.Limits(candidate_rows=2)))
    assert [len(answer.assignments) for answer in answers] == [2, 2, 2]
    claimed = [a["task_id"] for answer in answers for a in answer.assignments]
    assert len(set(claimed)) == 6


def test_a_round_that_gave_nobody_work_still_lets_each_node_read_for_itself(bench: Bench) -> None:
    """A cut read of tasks that fit the batch's largest figures but no node (too many cores for the
    node with the memory, too much memory for the one with the cores): nobody gets work, and each node,
    reading only what fits itself, finds the small tasks further down; a node whose own read could hold
    only rows already read (`dispatch._Read`) is not asked again, and gets what asking alone would give."""
    bench.submit(priority=80, layers=[layer(frames="1-3", resources={"cores": 3, "memory": "30G"})])
    bench.submit(priority=10, layers=[layer(frames="1-3", resources={"cores": 1, "memory": "500M"})])
    cores = bench.node("cores", cores=4, memory_mb=1000)
    memory = bench.node("memory", cores=1, memory_mb=64_000)
    limits = dispatch.Limits(candidate_rows=2)
    answers = _dry(bench, lambda conn: dispatch.work_for_nodes(conn, [cores, memory], utcnow(), limits))
    alone = _dry(bench, lambda conn: [dispatch.work_for_nodes(conn, [n], utcnow(), limits)[0] for n in (cores, memory)])
    assert [len(answer.assignments) for answer in answers] == [2, 1]
    assert _tasks_by_node(answers) == _tasks_by_node(alone)


def test_reports_of_several_nodes_applied_together(bench: Bench) -> None:
    job = bench.submit(layers=[layer(frames="1-3", retries=0)])
    a, b = bench.node("a", cores=2), bench.node("b", cores=1)
    on_a, on_b = bench.work(a), bench.work(b)
    report = lambda attempt, status="succeeded": {"attempt_id": attempt["attempt_id"], "status": status,  # noqa: E731
                                                   "exit_code": 0 if status == "succeeded" else 1, "log_size": 0}
    with bench.db.write() as conn:
        out = lifecycle.finish_reports(conn, [
            (a, [report(on_a[0]), report(on_a[1], "failed"), report(on_a[0])]),  # a repeat in the same call
            (b, [report(on_a[0])]),            # not b's attempt: refused, changes nothing
            (b, [report(on_b[0])]),
        ], utcnow())
    (results_a, changes_a), (results_foreign, changes_foreign), (results_b, changes_b) = out
    assert [r["accepted"] for r in results_a] == [True, True, True] and results_a[0] == results_a[2]
    assert results_foreign[0]["accepted"] is False and "no attempt" in results_foreign[0]["reason"]
    assert changes_foreign.settle == set() and changes_foreign.nodes == set()
    assert results_b[0]["accepted"] is True and changes_a.nodes == {a} and changes_b.nodes == {b}
    assert sorted(bench.task_states(job)) == ["failed", "succeeded", "succeeded"]
    with bench.db.read() as conn:
        assert lifecycle.unsettled_jobs(conn, changes_a.settle | changes_b.settle) == [job]


def test_nodes_with_news_for_many_waiting_nodes_at_once(bench: Bench) -> None:
    """The server's look for waiting agents: a node has news when a ready task fits it (tags, cores,
    memory, GPUs) or it has an attempt to kill; unknown and disabled nodes have none."""
    bench.submit(layers=[layer(frames="1-2", tags=["houdini"], resources={"cores": 4})])
    gpu_job = bench.submit(layers=[layer(frames="1", resources={"cores": 1, "gpus": 1})])
    fx = bench.node("fx", cores=8, tags=["houdini"])
    small_fx = bench.node("small-fx", cores=2, tags=["houdini"])  # too small for the 4-core tasks
    gpu = bench.node("gpu", cores=2, gpus=1)
    plain = bench.node("plain", cores=8)
    off = bench.node("off", cores=8, tags=["houdini"])
    with bench.db.write() as conn:
        conn.execute(nodes.update().where(nodes.c.id == off).values(admin_state="disabled"))
    def look(limits: dispatch.Limits = dispatch.DEFAULT_LIMITS) -> set[int]:
        return bench.act(lambda conn, now: dispatch.nodes_with_news(conn, [fx, small_fx, gpu, plain, off, 999],
                                                                    limits))

    assert look() == {fx, gpu}
    (running,) = bench.work(gpu)
    bench.act(lambda conn, now: lifecycle.kill_job(conn, gpu_job, now))
    assert look() == {fx, gpu}  # gpu: its attempt is to be killed
    assert look(dispatch.Limits(candidate_rows=1)) == {fx, gpu}  # a cut read: nodes that found nothing look alone
    assert running["job_id"] == gpu_job


def test_nodes_with_news_on_a_farm_with_nothing_ready(bench: Bench) -> None:
    """With no task ready anywhere the look reads no node and no candidate, and still finds kills."""
    job = bench.submit(layers=[layer(frames="1")])
    busy, idle = bench.node("busy", cores=2), bench.node("idle", cores=2)
    look = lambda: bench.act(lambda conn, now: dispatch.nodes_with_news(conn, [busy, idle, 999]))  # noqa: E731
    assert look() == {busy, idle}  # the one task fits both
    (running,) = bench.work(busy)
    assert look() == set()
    bench.act(lambda conn, now: lifecycle.kill_job(conn, job, now))
    assert look() == {busy}  # its attempt is to be killed
    assert running["job_id"] == job


def test_a_heartbeat_from_a_node_marked_down_brings_it_back(bench: Bench) -> None:
    """The node is up again and counts as changed (its waiting poll is woken, the summary re-read);
    a heartbeat from a node that was up all along changes nothing."""
    back, steady = bench.node("back"), bench.node("steady")
    with bench.db.write() as conn:
        conn.execute(nodes.update().where(nodes.c.id == back).values(state="down"))
    beat = Heartbeat(cpu_percent=1.0, memory_used_mb=10, load=0.0, running=[])
    with bench.db.write() as conn:
        (_, changes_back), (_, changes_steady) = heartbeats(conn, [Beat(back, beat, 60.0), Beat(steady, beat, 60.0)],
                                                            utcnow())
    assert changes_back.nodes == {back} and changes_steady.nodes == set()
    with bench.db.read() as conn:
        assert dict(conn.execute(select(nodes.c.name, nodes.c.state)).all()) == {"back": "up", "steady": "up"}


def test_heartbeats_of_several_nodes_applied_together(bench: Bench) -> None:
    """The agents' heartbeats of one write batch: each node is seen, its live figures recorded, an
    attempt it no longer mentions is lost (its task ready again, not a failed try), one it runs but the
    server does not know is to be killed; a node beating twice is answered as if it came after."""
    job = bench.submit(layers=[layer(frames="1-2")])
    a, b = bench.node("a", cores=1), bench.node("b", cores=1)
    (on_a,), (on_b,) = bench.work(a), bench.work(b)
    beat = lambda running: Heartbeat(cpu_percent=12.5, memory_used_mb=100, load=0.5, running=running)  # noqa: E731
    with bench.db.write() as conn:
        out = heartbeats(conn, [
            Beat(a, beat([{"attempt_id": on_a["attempt_id"], "progress": 40.0, "cpu_s": 3.0, "rss_mb": 50.0}]), 0.0),
            Beat(b, beat([]), 0.0),                                   # b forgot its attempt (grace 0 s)
            Beat(a, beat([{"attempt_id": on_a["attempt_id"], "progress": 60.0}, {"attempt_id": 999_999}]), 0.0),
        ], utcnow())
    (first_a, _), (answer_b, changes_b), (second_a, _) = out
    assert first_a == {"kill": [], "admin_state": "enabled"} and answer_b == {"kill": [], "admin_state": "enabled"}
    assert second_a["kill"] == [999_999]  # not an attempt the server knows on a
    assert changes_b.ready == 1
    with bench.db.read() as conn:
        by_id = {r.id: r for r in conn.execute(select(tasks).where(tasks.c.job_id == job))}
        seen = {r.name: r.cpu_percent for r in conn.execute(select(nodes.c.name, nodes.c.cpu_percent))}
        usage = conn.execute(select(attempts.c.cpu_s, attempts.c.peak_rss_mb)
                             .where(attempts.c.id == on_a["attempt_id"])).one()
    assert by_id[on_a["task_id"]].progress == 60.0 and by_id[on_a["task_id"]].state == "running"
    assert (by_id[on_b["task_id"]].state, by_id[on_b["task_id"]].lost, by_id[on_b["task_id"]].tries) == ("ready", 1, 0)
    assert seen == {"a": 12.5, "b": 12.5} and (usage.cpu_s, usage.peak_rss_mb) == (3.0, 50.0)
