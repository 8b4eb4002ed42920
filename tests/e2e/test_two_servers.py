"""Two real server processes on one PostgreSQL database: caps and licence limits hold whatever the race.

A studio may run several Thresher servers behind a load balancer on one PostgreSQL. Each process has
its own dispatcher, so the only thing between two of them handing out the last core of a capped
project at once is the database: the usage counters they lock in key order (`server/usage.py`). Here
simulated agents, half on each server, ask for work all at once, again and again, ending what they
hold in between; after every round the running work is read from the database.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import httpx
import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.postgres

API = "/api/v1"
NODES_PER_SERVER, CORES = 4, 4
CAP, LICENCE = 6, 4


def _job(name: str, project: str, limits: dict[str, int] | None = None) -> dict[str, Any]:
    return {"name": name, "project": project,
            "layers": [{"name": "l", "template": "command", "args": {"command": ["true"]}, "frames": "1-200",
                        "resources": {"cores": 1, "memory_mb": 64}, "limits": limits or {}}]}


def _register(url: str, enroll: str, name: str) -> str:
    body = {"name": name, "hostname": name, "os": "linux", "cores": CORES, "memory_mb": 8192, "gpus": [],
            "tags": [], "instance_id": uuid.uuid4().hex}
    r = httpx.post(f"{url}{API}/agent/register", json=body, headers={"Authorization": f"Bearer {enroll}"})
    r.raise_for_status()
    return str(r.json()["token"])


class SimulatedAgent:
    """Holds what it was given until told to end it, like a node whose tasks run for a while."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url + API, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.held: list[int] = []

    def ask(self) -> None:
        r = self.http.post("/agent/work?wait=0", json={})
        r.raise_for_status()
        self.held += [a["attempt_id"] for a in r.json()["assignments"]]

    def end_all(self) -> None:
        now = datetime.now(timezone.utc).isoformat()
        reports = [{"attempt_id": a, "status": "succeeded", "exit_code": 0, "cpu_s": 0.0, "peak_rss_mb": 0.0,
                    "reason": None, "log_size": 0, "ended_at": now} for a in self.held]
        if reports:
            self.http.post("/agent/finish", json={"reports": reports}).raise_for_status()
        self.held = []


def _all_at_once(agents: list[SimulatedAgent], step: Callable[[SimulatedAgent], None]) -> None:
    barrier = threading.Barrier(len(agents))
    errors: list[BaseException] = []

    def run(agent: SimulatedAgent) -> None:
        try:
            barrier.wait()
            step(agent)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_two_servers_never_exceed_a_cap_or_a_licence(make_farm: Callable[..., Any], pg_url: str) -> None:
    first = make_farm(pg_url)
    second = make_farm(pg_url)  # same database, its own process, dispatcher and data folder
    api = first.api
    api.post("/projects", json={"name": "capped", "max_cores": CAP})
    api.post("/projects", json={"name": "other"})
    api.post("/limits", json={"name": "houdini-engine", "max_total": LICENCE})
    api.post("/jobs", json=_job("capped", "capped"))
    api.post("/jobs", json=_job("licensed", "other", {"houdini-engine": 1}))
    api.post("/jobs", json=_job("plain", "other"))
    agents = [SimulatedAgent(farm.server_url, _register(farm.server_url, farm.enroll_token, f"{tag}{i}"))
              for farm, tag in ((first, "a"), (second, "b")) for i in range(NODES_PER_SERVER)]
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        for round_ in range(4):
            for _ in range(3):  # three asks each, all agents at once: each node fills up
                _all_at_once(agents, SimulatedAgent.ask)
            with engine.connect() as conn:
                running = conn.execute(text(
                    "SELECT j.name, sum(a.cores) AS cores, count(*) AS n FROM attempts a"
                    " JOIN jobs j ON j.id = a.job_id WHERE a.state = 'running' GROUP BY j.name")).all()
            by_job = {r.name: (int(r.cores), int(r.n)) for r in running}
            assert by_job["capped"][0] == CAP, (round_, by_job)  # at its cap, never above
            assert by_job["licensed"][1] == LICENCE, (round_, by_job)  # every licence used, none more
            assert sum(cores for cores, _ in by_job.values()) == 2 * NODES_PER_SERVER * CORES  # no core idles
            assert sum(len(a.held) for a in agents) == sum(n for _, n in by_job.values())
            _all_at_once(agents, SimulatedAgent.end_all)
        with engine.connect() as conn:
            used = {str(key): int(n) for key, n in conn.execute(text(
                "SELECT key, cores + units FROM usage WHERE cores + units > 0"))}
        assert used == {}  # every booking was given back by whichever server heard the end
    finally:
        engine.dispose()
        for agent in agents:
            agent.http.close()
