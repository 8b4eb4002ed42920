"""The dashboard's broadcaster (server/events/) on a real SQLite database, without HTTP.

What it promises: one database read per tick whatever the number of tabs; events that carry the
changed grid cells of watched jobs (never the whole grid again), job counts, watched tasks' states;
a frames-per-minute chart that follows finished work within seconds without counting twice.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import insert
from tests.support.dispatching import assign, finish_attempt

from thresher.server.clock import utcnow
from thresher.server.context import ServerContext
from thresher.server.db.tables import nodes
from thresher.server.events import EventHub, frames_per_minute, grids, subscribers
from thresher.server.main import prepare
from thresher.server.submit import check_spec, create_job


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerContext]:
    ctx = prepare(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "data")
    ctx.events = EventHub(sample_s=3600)
    yield ctx
    ctx.db.dispose()


def submit(server: ServerContext, frames: str = "1-4", **job: Any) -> int:
    spec = {"name": "job", "layers": [{"name": "render", "frames": frames, "args": {"command": ["echo", "{frame}"]}}],
            **job}
    with server.db.write() as conn:
        return create_job(conn, check_spec(spec), "tester")


def add_node(server: ServerContext, name: str, cores: int = 2) -> int:
    now = utcnow()
    with server.db.write() as conn:
        key = conn.execute(insert(nodes).values(
            name=name, hostname=name, os="linux", instance_id=name, cores=cores, memory_mb=16000, gpus=[], tags=[],
            state="up", admin_state="enabled", last_seen=now, registered_at=now)).inserted_primary_key
        assert key is not None
        return key[0]


def work(server: ServerContext, node_id: int) -> list[dict[str, Any]]:
    with server.db.write() as conn:
        got = assign(conn, node_id, utcnow())
    server.publish(jobs={a["job_id"] for a in got}, nodes=[node_id])
    return got


def finish(server: ServerContext, node_id: int, attempt_id: int, status: str = "succeeded") -> None:
    with server.db.write() as conn:
        finish_attempt(conn, node_id, {"attempt_id": attempt_id, "status": status,
                                                 "exit_code": 0 if status == "succeeded" else 1, "log_size": 0}, utcnow())
    server.publish(attempts=[attempt_id], nodes=[node_id])


def test_nobody_watching_means_no_event_and_no_per_change_reads(server: ServerContext) -> None:
    hub = server.events
    job = submit(server)
    hub.publish(jobs=[job], new_job=True)
    assert hub.tick(server) is None
    reads = hub.reads.count
    for _ in range(5):
        hub.publish(jobs=[job], logs=[1])
        assert hub.tick(server) is None
    assert hub.reads.count == reads  # pending ids are dropped, nothing is read for nobody


def test_grid_changes_travel_as_cells_and_a_hundred_tabs_cost_one_read(server: ServerContext) -> None:
    hub = server.events
    job = submit(server, frames="1-6")
    node = add_node(server, "n1", cores=2)
    queues = [hub.subscribe(jobs=[job]) for _ in range(100)] + [hub.subscribe() for _ in range(50)]
    grid = hub.grid(server, job)
    assert grid is not None and grid["state"] == [grid["states"].index("ready")] * 6
    assert hub.grid(server, job + 100) is None
    hub.tick(server)  # first tick: summary etc.

    reads = hub.reads.count
    got = work(server, node)
    assert len(got) == 2
    event = hub.tick(server)
    assert event is not None
    hub.tabs.broadcast(event)
    cells = event["grid"][str(job)]
    assert cells["from"] == grid["version"] and cells["v"] > grid["version"]
    running = grid["states"].index("running")
    assert sorted(cells["cells"]) == sorted([[a["task_id"], running, "n1"] for a in got])
    info = event["job_info"][str(job)]
    assert info["state"] == "running" and info["counts"]["running"] == 2 and info["total"] == 6
    assert info["paused"] is False  # a jobs list filtered to paused asks (a running job a person paused)
    # one event for every tab, read once: job info, grid diff, summary; not once per tab
    assert hub.reads.count - reads <= 4
    assert all(q.qsize() == 1 and q.get_nowait() is event for q in queues)

    # the grid a new tab loads now is the shared snapshot at the new version: no database read
    reads = hub.reads.count
    again = hub.grid(server, job)
    assert hub.reads.count == reads and again is not None and again["version"] == cells["v"]
    assert again["state"].count(running) == 2 and "n1" in again["node"]

    # a finished attempt names its job through the attempt; only that cell changes
    finish(server, node, got[0]["attempt_id"])
    event = hub.tick(server)
    assert event is not None and job in event["jobs"]
    (cell,) = event["grid"][str(job)]["cells"]
    assert cell == [got[0]["task_id"], grid["states"].index("succeeded"), "n1"]
    assert event["grid"][str(job)]["from"] == cells["v"]
    assert hub.tick(server) is None  # nothing changed: nothing sent


def test_many_changes_ask_tabs_to_reload_the_grid(server: ServerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grids, "GRID_MAX_CELLS", 1)
    hub = server.events
    job = submit(server)
    node = add_node(server, "n1", cores=4)
    hub.subscribe(jobs=[job])
    version = hub.grid(server, job)["version"]  # type: ignore[index]
    work(server, node)
    event = hub.tick(server)
    assert event is not None
    entry = event["grid"][str(job)]
    assert entry["cells"] is None and entry["from"] == version
    assert hub.grid(server, job)["version"] == entry["v"]  # type: ignore[index]


def test_watched_task_state_is_sent_when_it_changes(server: ServerContext) -> None:
    hub = server.events
    job = submit(server, frames="1-2")
    other = submit(server, frames="1")
    node = add_node(server, "n1", cores=1)
    from thresher.server.views import list_tasks

    with server.db.read() as conn:
        task_id = list_tasks(conn, job, layer=None, state=None, limit=10, offset=0).items[0].id
    hub.subscribe(tasks=[task_id])
    first = hub.tick(server)
    assert first is not None and first["task_info"][str(task_id)]["state"] == "ready"  # what a new tab must match
    assert hub.tick(server) is None
    (a,) = work(server, node)
    assert a["task_id"] == task_id
    event = hub.tick(server)
    assert event is not None
    info = event["task_info"][str(task_id)]
    assert (info["job"], info["state"], info["attempt"]) == (job, "running", a["attempt_id"])
    finish(server, node, a["attempt_id"])
    (b,) = work(server, node)  # the job's other task: the watched task's state does not change
    assert b["task_id"] != task_id
    event = hub.tick(server)
    assert event is not None and event["task_info"][str(task_id)]["state"] == "succeeded"
    finish(server, node, b["attempt_id"])
    work(server, node)  # another job's task
    event = hub.tick(server)
    assert event is not None and "task_info" not in event
    assert other in event["jobs"]


def test_a_stalled_tab_is_told_to_reload_and_dropped(server: ServerContext) -> None:
    hub = server.events
    stalled = hub.subscribe()
    fine = hub.subscribe()
    for i in range(subscribers.QUEUE_SIZE + 1):
        hub.tabs.broadcast({"n": i})
        fine.get_nowait()
    assert hub.watchers == 1
    assert stalled.qsize() == 1 and stalled.get_nowait() == {"reload": True}
    hub.close()
    assert fine.get_nowait() is None and hub.watchers == 0


def test_grids_nobody_watches_are_dropped(server: ServerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grids, "GRID_IDLE_S", 0.0)
    hub = server.events
    job = submit(server)
    queue = hub.subscribe(jobs=[job])
    hub.grid(server, job)
    hub.tick(server)
    assert job in hub.grids  # watched: kept
    hub.unsubscribe(queue)
    hub.tick(server)
    assert job not in hub.grids


def test_frames_per_minute_follows_within_seconds_and_counts_once(server: ServerContext,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hub = server.events
    job = submit(server, frames="1-10")
    node = add_node(server, "n1", cores=3)
    assert sum(hub.frames_per_minute(server)) == 0
    first = work(server, node)
    for a in first[:2]:
        finish(server, node, a["attempt_id"])
    assert sum(hub.frames_per_minute(server)) == 0  # cached for FPM_REFRESH_S
    monkeypatch.setattr(frames_per_minute, "FPM_REFRESH_S", 0.0)
    fpm = hub.frames_per_minute(server)
    assert len(fpm) == 60 and fpm[-1] + fpm[-2] == 2 and sum(fpm) == 2
    finish(server, node, first[2]["attempt_id"])
    for _ in range(3):  # incremental reads overlap the last one: nothing is counted twice
        assert sum(hub.frames_per_minute(server)) == 3
    failed = work(server, node)[0]
    finish(server, node, failed["attempt_id"], status="failed")
    assert sum(hub.frames_per_minute(server)) == 3
    hub.forget_frames_per_minute()  # a full re-read agrees
    assert sum(hub.frames_per_minute(server)) == 3
    assert job


def test_node_history_samples_at_the_configured_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert EventHub().farm.sample_s == 15.0
    assert EventHub(sample_s=0.25).farm.sample_s == 0.25
    monkeypatch.setenv("THRESHER_NODE_SAMPLE_S", "0.25")  # the server reads it where it builds its context
    ctx = prepare(f"sqlite:///{tmp_path / 'env.db'}", tmp_path / "data")
    assert ctx.events.farm.sample_s == 0.25
    ctx.db.dispose()


def test_queue_type_is_asyncio(server: ServerContext) -> None:
    queue = server.events.subscribe(jobs=[1], tasks=[2])
    assert isinstance(queue, asyncio.Queue)
    assert server.events.watched() == ({1}, {2})


def test_grid_columns_follow_layer_then_task_order(server: ServerContext) -> None:
    spec = {"name": "two", "layers": [
        {"name": "render", "frames": "1-3", "args": {"command": ["echo", "{frame}"]}},
        {"name": "comp", "frames": "1-2", "depends_on": ["render"], "args": {"command": ["echo", "{frame}"]}}]}
    with server.db.write() as conn:
        job = create_job(conn, check_spec(spec), "tester")
    grid = server.events.grid(server, job)
    assert grid is not None
    assert grid["layers"] == ["render", "comp"] and grid["layer"] == [0, 0, 0, 1, 1]
    assert grid["frames"] == ["1", "2", "3", "1", "2"] and grid["node"] == [""] * 5
    assert [grid["states"][code] for code in grid["state"]] == ["ready"] * 3 + ["waiting"] * 2


def test_job_counts_are_read_only_for_tabs_that_show_them(server: ServerContext) -> None:
    hub = server.events
    job = submit(server)
    queue = hub.subscribe(job_info=False)  # say, an overview tab
    hub.publish(jobs=[job])
    event = hub.tick(server)
    assert event is not None and job in event["jobs"] and "job_info" not in event
    hub.subscribe()  # a jobs list tab
    hub.publish(jobs=[job])
    event = hub.tick(server)
    assert event is not None and event["job_info"][str(job)]["counts"]["ready"] == 4
    hub.unsubscribe(queue)


def test_heartbeat_news_refreshes_node_pages_not_the_farm_summary(server: ServerContext) -> None:
    """A heartbeat's live figures (quiet node news) reach the tabs but do not make the broadcaster
    re-read the farm summary; a node's real change does, once `summary_s` has passed."""
    hub = server.events
    hub.farm.summary_s = 0.2  # (and at the latest every 2 s whatever happened)
    node = add_node(server, "n1")
    hub.subscribe(job_info=False)
    hub.tick(server)  # the first summary
    reads = hub.reads.count
    time.sleep(0.25)
    hub.publish(quiet_nodes=[node])
    event = hub.tick(server)
    assert event is not None and event["nodes"] == [node] and "summary" not in event
    assert hub.reads.count == reads
    with server.db.write() as conn:
        conn.execute(nodes.update().where(nodes.c.id == node).values(admin_state="disabled"))
    time.sleep(0.25)
    hub.publish(nodes=[node])
    event = hub.tick(server)
    assert event is not None and event["nodes"] == [node] and "summary" in event
    assert hub.farm.summary is not None and hub.farm.summary["nodes"]["disabled"] == 1
