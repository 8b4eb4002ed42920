"""The simulator's discrete-event loop: the server's real code, simulated nodes, virtual time.

Nothing of the scheduling is copied here. Jobs are submitted with `submit.check_spec`/`create_job`,
nodes register with `nodes.register`, projects, folders, stakes and limits are made with
`studio_admin`, and at every virtual instant the ended attempts are reported with
`lifecycle.finish_reports` (every node's reports in one call, then the jobs they may have settled
derived again, as the server's refresher does) and every node with free room asks for work in one
`dispatch.work_for_nodes` call, as the server's write batcher batches the agents that ask together.
The simulated `now` is passed everywhere, so the database's times are virtual times.

A node asks when the server would hear from it: when one of its attempts ended (its agent reports
and asks again), and, while it waits with room it could not fill, when tasks became ready (a job
arrived, a task was retried or requeued, a dependency released) or at the periodic look for news
(the scenario's `recheck_s`, the server's `news_recheck_s`), as the server's notifier wakes agents.

A heap holds what happens next: job arrivals, attempt ends (success, failure or a crash of the node,
drawn when the attempt starts) and node repairs, each rounded up to the scenario's tick."""

from __future__ import annotations

import heapq
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event

from thresher.model.frames import frame_count
from thresher.server import dispatch, lifecycle, nodes, services, studio, studio_admin
from thresher.server.auth import Caller
from thresher.server.db.engine import Database
from thresher.server.db.queries import dispatch as qd
from thresher.server.settings import ServerSettings
from thresher.server.submit import check_spec, create_job
from thresher.sim.scenario import FrameTime, Job, Layer, NodeGroup, Scenario
from thresher.sim.specs import Submitted, job_spec, submitted
from thresher.wire import studio as ws
from thresher.wire.agent import Gpu, Registration
from thresher.wire.services import ServiceCreate

EPOCH = datetime(2030, 1, 1, tzinfo=timezone.utc)
_ADMIN = Caller(kind="admin", name="simulator")

ARRIVE, END, REPAIR, LOOK = 0, 1, 2, 3


@dataclass
class Attempt:
    """One attempt as the simulator saw it (what the report is drawn from)."""

    attempt_id: int
    task_id: int
    job: int            # index of the job in `Run.jobs`
    layer: str
    node: int           # index in `Run.nodes`
    cores: int
    gpus: int
    limits: dict[str, int]
    start: float
    end: float
    status: str         # succeeded, failed or lost


@dataclass
class JobRecord:
    name: str
    project: str
    priority: int
    arrived: float
    job_id: int = 0
    depends_on: list[int] = field(default_factory=list)   # indexes of jobs
    layers: dict[str, Layer] = field(default_factory=dict)
    submitted: dict[str, Submitted] = field(default_factory=dict)   # what each layer runs with, as submitted
    tasks: int = 0
    finished: float | None = None
    state: str = "waiting"


@dataclass
class SimNode:
    group: NodeGroup
    name: str
    node_id: int = 0
    free_cores: int = 0
    up: bool = True
    running: dict[int, Attempt] = field(default_factory=dict)


@dataclass
class Run:
    """What a run produced: every attempt, every job, the nodes, and how long it took."""

    scenario: Scenario
    jobs: list[JobRecord]
    nodes: list[SimNode]
    attempts: list[Attempt]
    end: float
    wall_s: float
    instants: int
    unfinished: int
    dispatch_calls: int = 0


#: The page cache of the simulator's own SQLite file (PRAGMA cache_size, negative: KiB).
SIM_CACHE_KIB = 256 * 1024


def throwaway_sqlite(db: Database) -> None:
    """The simulator's own SQLite file is thrown away at the end of the run, so it need not survive a
    crash: no syncs to disk (`synchronous=OFF`) and a page cache large enough to hold the whole farm
    (256 MiB), so a round's reads do not go through the operating system for pages it dropped. Only
    for that file: a database the caller names (and the server's) keeps the server's settings."""

    @event.listens_for(db.engine, "connect")
    def _fast(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute(f"PRAGMA cache_size=-{SIM_CACHE_KIB}")
        cursor.close()


def vt(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def frame_seconds(ft: FrameTime, rng: random.Random) -> float:
    if ft.dist == "fixed":
        return ft.seconds
    if ft.dist == "uniform":
        assert ft.low is not None and ft.high is not None
        return rng.uniform(ft.low, ft.high)
    return ft.seconds * math.exp(rng.gauss(0.0, ft.sigma))


class Simulator:
    def __init__(self, scenario: Scenario, db_url: str | None = None, workdir: Path | None = None) -> None:
        self.scenario = scenario
        self._tmp = None if workdir or db_url else tempfile.TemporaryDirectory(prefix="thresher-sim-")
        folder = workdir or Path(self._tmp.name if self._tmp else tempfile.gettempdir())
        self.db = Database(db_url or f"sqlite:///{folder / 'sim.db'}", ServerSettings().pool)
        if db_url is None:
            throwaway_sqlite(self.db)
        self.db.migrate()
        self.heap: list[tuple[float, int, int, Any]] = []
        self._seq = 0
        self.jobs: list[JobRecord] = []
        self.nodes: list[SimNode] = []
        self.by_node_id: dict[int, int] = {}
        self.attempts: list[Attempt] = []
        self.instants = 0
        self.dispatch_calls = 0
        self._frames: dict[str, int] = {}
        self._job_ids: dict[int, int] = {}
        self.waiting: set[int] = set(range(0))   # nodes with room that found nothing (woken by news)
        self._next_recheck = 0.0
        self._starts_at_look = -1
        self._last_real = 0.0   # the last instant something other than a look happened

    # ------------------------------------------------------------------ set-up
    def _at(self, seconds: float, kind: int, payload: Any) -> None:
        tick = self.scenario.tick_s
        self._seq += 1
        heapq.heappush(self.heap, (math.ceil(seconds / tick - 1e-9) * tick, self._seq, kind, payload))

    def _setup(self, conn: Connection) -> None:
        s = self.scenario
        known = {p.name for p in studio_admin.list_projects(conn)}   # `default` is there from the start
        for project in s.projects:
            figures = {"weight": project.weight, "max_cores": project.max_cores, "max_gpus": project.max_gpus}
            if project.name in known:
                studio_admin.update_project(conn, project.name, ws.ProjectPatch(**figures))
            else:
                studio_admin.create_project(conn, ws.ProjectCreate(name=project.name, **figures))
        for limit in s.limits:
            studio_admin.create_limit(conn, ws.LimitCreate(name=limit.name, max_total=limit.max_total,
                                                           max_per_node=limit.max_per_node))
        for group in s.nodes:
            if group.pool:   # also a pool none of whose nodes is up: its stakes and services still hold
                studio.ensure_pool(conn, group.pool)
            for index in range(group.count):
                node = SimNode(group, f"{group.name}-{index:05d}", free_cores=group.cores)
                node.node_id = self._register(conn, node)
                self.by_node_id[node.node_id] = len(self.nodes)
                self.waiting.add(len(self.nodes))
                self.nodes.append(node)
        for service in s.services:  # after the nodes: a service's pools must exist, as on the server
            services.create_service(conn, ServiceCreate(name=service.name, defaults=service.defaults))
        for folder in s.folders:
            studio_admin.create_folder(conn, folder.project, ws.FolderCreate(
                name=folder.name, priority=folder.priority, min_cores=folder.min_cores, max_cores=folder.max_cores))
        for stake in s.stakes:
            studio_admin.set_stake(conn, stake.project, stake.pool, ws.StakeBody(
                guaranteed_cores=stake.guaranteed_cores, max_cores=stake.max_cores,
                guaranteed_gpus=stake.guaranteed_gpus, max_gpus=stake.max_gpus))
        names: dict[str, int] = {}
        for job in s.jobs:
            for n in range(job.repeat):
                index = len(self.jobs)
                name = job.name if job.repeat == 1 else f"{job.name}-{n + 1}"
                record = JobRecord(name, job.project, job.priority, job.at + n * job.every_s,
                                   depends_on=[names[d] for d in job.depends_on],
                                   layers={layer.name: layer for layer in job.layers})
                names.setdefault(job.name, index)
                self.jobs.append(record)
                self._at(record.arrived, ARRIVE, (index, job))

    def _register(self, conn: Connection, node: SimNode) -> int:
        g = node.group
        facts = Registration(name=node.name, hostname=node.name, cores=g.cores, memory_mb=g.memory_mb,
                             gpus=[Gpu(index=i, name="sim", memory_mb=16_000, uuid=f"{node.name}-{i}")
                                   for i in range(g.gpus)],
                             tags=g.tags, instance_id=node.name, pool=g.pool, replace=True)
        return nodes.register(conn, _ADMIN, "", facts, vt(0), 1e9).node_id

    # ------------------------------------------------------------------ the loop
    def run(self) -> Run:
        started = time.perf_counter()
        with self.db.write() as conn:
            self._setup(conn)
        until = self.scenario.until_s
        now = 0.0
        while self.heap or self._last_look(now):
            now = self.heap[0][0]
            if until is not None and now > until:
                now = until
                break
            batch = []
            while self.heap and self.heap[0][0] == now:
                batch.append(heapq.heappop(self.heap))
            self.instants += 1
            with self.db.write() as conn:
                self._instant(conn, now, batch)
        with self.db.read() as conn:
            self._read_job_ends(conn)
        unfinished = sum(1 for j in self.jobs if j.finished is None)
        wall = time.perf_counter() - started
        self.db.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()
        end = now if until is not None and now == until else self._last_real
        return Run(self.scenario, self.jobs, self.nodes, self.attempts, end, wall, self.instants, unfinished,
                   self.dispatch_calls)

    def _last_look(self, now: float) -> bool:
        """Nothing more will happen: one look for news by the nodes still waiting (work a cap or a
        node's room kept from them may fit now); the run goes on if it started something."""
        if not self.waiting or self._starts_at_look == len(self.attempts):
            return False
        self._starts_at_look = len(self.attempts)
        self._next_recheck = now
        self._at(now + self.scenario.recheck_s, LOOK, None)
        return True

    def _instant(self, conn: Connection, now: float, batch: list[tuple[float, int, int, Any]]) -> None:
        when = vt(now)
        if any(kind != LOOK for _t, _s, kind, _p in batch):
            self._last_real = now
        reports: dict[int, list[dict[str, Any]]] = {}
        crashed: list[SimNode] = []
        woken: set[int] = set()
        news = False
        for _t, _seq, kind, payload in batch:
            if kind == ARRIVE:
                self._submit(conn, *payload)
                news = True
            elif kind == END:
                attempt: Attempt = payload
                node = self.nodes[attempt.node]
                if node.running.pop(attempt.attempt_id, None) is None:
                    continue  # lost with its node already
                node.free_cores += attempt.cores
                woken.add(attempt.node)
                if attempt.status == "lost":
                    node.running[attempt.attempt_id] = attempt  # lost with the rest of the node's work
                    node.free_cores -= attempt.cores
                    crashed.append(node)
                    continue
                reports.setdefault(node.node_id, []).append({
                    "attempt_id": attempt.attempt_id, "status": attempt.status,
                    "exit_code": 0 if attempt.status == "succeeded" else 1, "log_size": 0})
            elif kind == REPAIR:
                node = payload
                self._register(conn, node)
                node.up = True
                woken.add(self.by_node_id[node.node_id])
        if reports:
            results = lifecycle.finish_reports(conn, list(reports.items()), when)
            news = news or any(changes.ready for _, changes in results)
            touched = set().union(*(changes.settle for _, changes in results))
            job_ids = lifecycle.unsettled_jobs(conn, touched)
            if job_ids:
                news = lifecycle.refresh_jobs(conn, job_ids, when).ready > 0 or news
        for node in crashed:
            news = self._crash(conn, node, now) or news
        held_back: dict[int, list[int]] = {}   # an idle node asking for its group -> the others
        if news or now >= self._next_recheck:
            if now >= self._next_recheck:
                self._next_recheck = now + self.scenario.recheck_s
            # Idle nodes of one group are alike (same room, nothing running, nothing booked): one asks
            # for all of them, and the others ask only if it got work. This keeps an idle farm's
            # wake-ups from costing a dispatch round per node; the rule answers each node the same.
            first: dict[str, int] = {}
            for i in sorted(self.waiting - woken):
                node = self.nodes[i]
                if node.running or not node.up:
                    woken.add(i)
                elif node.group.name in first:
                    held_back[first[node.group.name]].append(i)
                else:
                    first[node.group.name] = i
                    held_back[i] = []
                    woken.add(i)
        asking = sorted(i for i in woken if self.nodes[i].up and self.nodes[i].free_cores > 0)
        got = self._ask(conn, asking, now)
        more = sorted(j for i, others in held_back.items() if i in got for j in others)
        self._ask(conn, more, now)
        # what asked and still has room waits, like an agent in its long poll, until news wakes it
        self.waiting = {i for i in self.waiting | set(asking) | set(more)
                        if self.nodes[i].up and self.nodes[i].free_cores > 0}

    def _ask(self, conn: Connection, asking: list[int], now: float) -> dict[int, set[int]]:
        """These nodes ask for work together (one `work_for_nodes`, as one write batch of the server);
        the attempts each was given."""
        got: dict[int, set[int]] = {}
        if not asking or conn.execute(qd.ANY_READY).first() is None:
            return got   # nothing is ready: every answer would be empty (kills are not simulated)
        self.dispatch_calls += 1
        answers = dispatch.work_for_nodes(conn, [self.nodes[i].node_id for i in asking], vt(now))
        for index, answer in zip(asking, answers, strict=True):
            for assignment in answer.assignments:
                self._start(index, assignment, now)
                got.setdefault(index, set()).add(assignment["attempt_id"])
        return got

    def _crash(self, conn: Connection, node: SimNode, now: float) -> bool:
        """The node went away: everything on it is lost (the server's view: `lose_attempts`), it is down,
        and it registers again after its group's repair time."""
        lost = sorted(node.running)
        if not lost:
            return False  # crashed already at this instant
        for attempt_id in lost:
            attempt = node.running.pop(attempt_id)
            attempt.end, attempt.status = now, "lost"
            node.free_cores += attempt.cores
        changes = lifecycle.lose_attempts(conn, lost, "simulated node crash", vt(now))
        nodes.goodbye(conn, node.node_id)
        node.up = False
        self._at(now + node.group.repair_s, REPAIR, node)
        return changes.ready > 0

    def _submit(self, conn: Connection, index: int, job: Job) -> None:
        record = self.jobs[index]
        known = services.known_services(conn) if self.scenario.services else {}
        spec = job_spec(job, record.name, [self.jobs[d].job_id for d in record.depends_on], known)
        checked = check_spec(spec, known)
        record.job_id = create_job(conn, checked, "simulator", create_projects=True)
        record.tasks = checked.task_count
        record.submitted = submitted(checked)
        self._job_ids[record.job_id] = index

    def _frames_of(self, frames: str) -> int:
        count = self._frames.get(frames)
        if count is None:
            count = self._frames[frames] = frame_count(frames)
        return count

    def _start(self, node_index: int, assignment: dict[str, Any], now: float) -> None:
        node = self.nodes[node_index]
        job_index = self._job_index(assignment["job_id"])
        layer = self.jobs[job_index].layers[assignment["layer"]]
        runs = self.jobs[job_index].submitted[layer.name]
        rng = random.Random(f"{self.scenario.seed}:{assignment['task_id']}:{assignment['attempt_id']}")
        frames = self._frames_of(assignment["frames"])
        seconds = sum(frame_seconds(layer.frame_time, rng) for _ in range(frames)) / node.group.speed
        seconds += self.scenario.task_overhead_s
        status = "succeeded"
        draw = rng.random()
        if draw < node.group.loss_rate:
            status, seconds = "lost", seconds * rng.random()
        elif draw < node.group.loss_rate + node.group.failure_rate:
            status, seconds = "failed", seconds * rng.random()
        if runs.timeout_s is not None and seconds > runs.timeout_s:
            status, seconds = "failed", runs.timeout_s   # the agent stops it at its timeout
        attempt = Attempt(assignment["attempt_id"], assignment["task_id"], job_index, layer.name, node_index,
                          runs.cores, runs.gpus, runs.limits, now, now + seconds, status)
        node.free_cores -= runs.cores
        node.running[attempt.attempt_id] = attempt
        self.attempts.append(attempt)
        self._at(attempt.end, END, attempt)

    def _job_index(self, job_id: int) -> int:
        return self._job_ids[job_id]

    def _read_job_ends(self, conn: Connection) -> None:
        """When each job finished, as the server recorded it (its `finished_at`, in virtual time)."""
        from thresher.server.views import get_job

        for record in self.jobs:
            if not record.job_id:
                continue
            view = get_job(conn, record.job_id)
            record.state = str(view.state)
            finished = getattr(view, "finished_at", None)
            if finished is not None:
                if finished.tzinfo is None:
                    finished = finished.replace(tzinfo=timezone.utc)
                record.finished = (finished - EPOCH).total_seconds()


def simulate(scenario: Scenario, db_url: str | None = None) -> Run:
    return Simulator(scenario, db_url).run()
