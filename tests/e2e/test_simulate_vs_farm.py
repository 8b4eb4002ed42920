"""Honest: the simulator and a real farm of local agents, on the same small scenario, agree.

3 agents x 2 cores, projects a and b of weights 2:1, 24 one-core `sleep 1` tasks each, released
together (both jobs wait on a one-task gate job). The per-task overhead of this farm (starting the
process, reporting, asking again) is measured first on a calibration job of 24 `sleep 0.5` tasks
(four waves on the six cores) and given to the scenario as `task_overhead_s`; nothing else is tuned.
The overhead is the median cycle of a core on a node (from one task's start to the start of the task
after next on that two-core node) less the 0.5 s of work, over the waves after the first: the agents'
cold start (their first asks come at different moments, a loaded machine spreads them further), which
a makespan would count as overhead of every task, stays out of it. Makespans must agree within 10%, and the
shares of busy cores while both projects run (`report.busy_window_shares`, the same function for
both) within 5 points.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

import pytest

from thresher.sim.engine import simulate
from thresher.sim.report import busy_window_shares
from thresher.sim.scenario import parse_scenario

pytestmark = pytest.mark.timeout(120)

NODES, CORES, TASKS, SLEEP = 3, 2, 24, 1.0


def _job(name: str, project: str, tasks: int, seconds: float, depends_on: list[int] | None = None) -> dict[str, Any]:
    return {"name": name, "project": project, "depends_on": depends_on or [],
            "layers": [{"name": "r", "frames": f"1-{tasks}" if tasks > 1 else "1", "retries": 0,
                        "args": {"command": ["sleep", str(seconds)]}}]}


def _runs(api: Any, job_id: int, project: str) -> list[tuple[str, float, float, float]]:
    tasks = api.get(f"/jobs/{job_id}/tasks", limit=1000)["items"]
    assert all(t["state"] == "succeeded" for t in tasks)
    return [(project, datetime.fromisoformat(t["started_at"]).timestamp(),
             datetime.fromisoformat(t["ended_at"]).timestamp(), 1.0) for t in tasks]


def _median_cycle(api: Any, job_id: int) -> float:
    """Median time from a task's start to the start of the task that took over its core on that node,
    from the second wave on."""
    starts: dict[str, list[float]] = {}
    for t in api.get(f"/jobs/{job_id}/tasks", limit=1000)["items"]:
        starts.setdefault(t["node"], []).append(datetime.fromisoformat(t["started_at"]).timestamp())
    cycles = sorted(ordered[i + CORES] - ordered[i] for ordered in map(sorted, starts.values())
                    for i in range(CORES, len(ordered) - CORES))  # the first wave's starts are the cold start
    assert cycles, starts
    return cycles[len(cycles) // 2]


def _wait_done(farm: Any, api: Any, job_ids: list[int], timeout: float = 60) -> None:
    farm.wait_for(lambda: all(api.get(f"/jobs/{j}")["state"] == "succeeded" for j in job_ids), timeout=timeout,
                  interval=0.2)


def test_simulated_makespan_and_shares_match_a_real_farm(make_farm: Callable[..., Any]) -> None:
    farm = make_farm()
    api = farm.api
    api.post("/projects", json={"name": "a", "weight": 2})
    api.post("/projects", json={"name": "b", "weight": 1})
    for i in range(NODES):
        farm.start_agent(f"n{i}", cores=CORES)
    calibration = api.post("/jobs", json=_job("calibration", "a", 4 * NODES * CORES, 0.5))["id"]
    _wait_done(farm, api, [calibration])
    overhead = max(0.0, _median_cycle(api, calibration) - 0.5)

    gate = api.post("/jobs", json=_job("gate", "a", 1, 0.2))["id"]
    a = api.post("/jobs", json=_job("a-work", "a", TASKS, SLEEP, [gate]))["id"]
    b = api.post("/jobs", json=_job("b-work", "b", TASKS, SLEEP, [gate]))["id"]
    started = time.monotonic()
    _wait_done(farm, api, [a, b])
    assert time.monotonic() - started < 60
    real_makespan, real_shares = busy_window_shares(_runs(api, a, "a") + _runs(api, b, "b"))

    run = simulate(parse_scenario({
        "tick_s": 0.01, "recheck_s": 2.0, "task_overhead_s": overhead,
        "nodes": [{"name": "n", "count": NODES, "cores": CORES}],
        "projects": [{"name": "a", "weight": 2}, {"name": "b", "weight": 1}],
        "jobs": [{"name": f"{p}-work", "project": p, "layers": [{"name": "r", "frames": TASKS, "retries": 0,
                                                                  "frame_time": {"seconds": SLEEP}}]}
                 for p in ("a", "b")]}))
    sim_makespan, sim_shares = busy_window_shares(
        [(run.jobs[a_.job].project, a_.start, a_.end, a_.cores) for a_ in run.attempts])
    detail = (f"overhead {overhead:.3f} s; makespan real {real_makespan:.2f} s, simulated {sim_makespan:.2f} s; "
              f"shares real {real_shares}, simulated {sim_shares}")
    print(detail)
    assert abs(sim_makespan - real_makespan) <= 0.10 * real_makespan, detail
    for project in ("a", "b"):
        assert abs(sim_shares[project] - real_shares[project]) <= 0.05, detail
