"""`thresher simulate --from-server`: a scenario drawn from a live farm, to simulate what happens from now.

Read through the API (the client in `client/`, an admin token), never the farm's database: its nodes,
pools, projects with their folders and stakes, licence limits, services, and its unfinished jobs
(`read_farm`). `scenario_of` turns that into a scenario (pure, so it is tested without a server):

- nodes: the nodes up and enabled, grouped by what the rule sees of them (cores, memory, GPUs, pool,
  tags); a pool without such a node is kept as an empty group, so its stakes and services still hold;
- jobs: those queued, running or waiting (a paused or blocked job starts nothing by itself and is
  left out; a job waiting on one left out waits on nothing here), each arriving at time 0 with its
  layers' tasks not yet done (waiting, held, ready and running: a running task is simulated again
  from its start, the simulator does not know how far it got); their frames, chunk, resources, tags,
  pools, licences, retries and dependencies on layers and jobs as the farm stored them (services
  were applied at their submit: their rows hold the values);
- frame times: a layer's own estimate where the farm has one (the median and quartiles of its
  finished tasks' times, `Layer.estimate`, as a lognormal), else `frame_time_s`.

`merged` lays a scenario written by hand over the snapshot: its settings (seed, tick, recheck,
overhead, until) apply, and its node groups, projects, folders, stakes, limits, services and jobs are
added ("and 40 more GPU nodes", "and next week's show"); a record of the farm's with the same name
stays the farm's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from thresher.model.frames import frame_count
from thresher.sim.scenario import Scenario, ScenarioError, parse_scenario
from thresher.wire.jobs import Job, JobSummary, Layer
from thresher.wire.nodes import Node
from thresher.wire.services import Service
from thresher.wire.studio import Limit, Pool, Project

#: The job states whose tasks will still run without a person: the snapshot's jobs.
LIVE_JOB_STATES = ("queued", "running", "waiting")
#: The lognormal spread of a layer without quartiles to draw it from.
DEFAULT_SIGMA = 0.3
_QUARTILES = 2 * 0.6745   # the 25th to 75th percentile of a standard normal, in standard deviations

@dataclass
class FarmState:
    """What the API says of the farm now."""

    nodes: list[Node] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def _paged(fetch: Callable[[int, int], Any], page: int = 500) -> list[Any]:
    items: list[Any] = []
    while True:
        answer = fetch(page, len(items))
        items.extend(answer.items)
        if not answer.items or len(items) >= answer.total:
            return items


def read_farm(api: Any) -> FarmState:
    """The farm as `api` (a `client.api.Thresher` with an admin token) sees it: a few list calls and
    one call per unfinished job (its layers, with their counts and estimates)."""
    summaries: list[JobSummary] = []
    for state in LIVE_JOB_STATES:
        def page(limit: int, offset: int, state: str = state) -> Any:
            return api.jobs(state=state, limit=limit, offset=offset)
        summaries += _paged(page)
    jobs = [api.job(s.id) for s in sorted(summaries, key=lambda s: s.id)]
    return FarmState(nodes=api.all_nodes(), pools=api.pools(), projects=api.projects(), limits=api.limits(),
                     services=api.services(), jobs=jobs)


def _name(text: str, prefix: str = "") -> str:
    """A scenario name (letters, digits, `_.-`, at most 64) for a farm's name."""
    clean = re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_") or "x"
    return (prefix + clean)[:64]


def _groups(nodes: list[Node], pools: list[Pool]) -> list[dict[str, Any]]:
    alike: dict[tuple[Any, ...], int] = {}
    for node in nodes:
        if node.state != "up" or node.admin_state != "enabled":
            continue
        key = (node.pool, node.cores, node.memory_mb, len(node.gpus), tuple(sorted(node.tags)))
        alike[key] = alike.get(key, 0) + 1
    groups = [{"name": _name(f"{pool}-{i + 1}"), "count": count, "cores": cores, "memory_mb": memory, "gpus": gpus,
               "pool": _name(pool), "tags": list(tags)}
              for i, ((pool, cores, memory, gpus, tags), count) in enumerate(sorted(alike.items()))]
    served = {g["pool"] for g in groups}
    groups += [{"name": _name(f"{p.name}-none"), "count": 0, "pool": _name(p.name)} for p in pools
               if _name(p.name) not in served]
    return groups


def frame_time_of(layer: Layer, frame_time_s: float) -> dict[str, Any]:
    """A layer's frame-time distribution: its estimate per frame (the median task time over its
    frames per task, spread from the quartiles), else `frame_time_s` fixed."""
    estimate = layer.estimate
    per_task = max(1, layer.chunk)
    if estimate is None or not estimate.task_s or estimate.samples <= 0:
        return {"dist": "fixed", "seconds": frame_time_s}
    sigma = DEFAULT_SIGMA
    if estimate.low_s and estimate.high_s and estimate.high_s > estimate.low_s > 0:
        sigma = min(5.0, math.log(estimate.high_s / estimate.low_s) / _QUARTILES)
    return {"dist": "lognormal", "seconds": max(0.001, estimate.task_s / per_task), "sigma": round(sigma, 4)}


def _left(layer: Layer) -> int:
    c = layer.counts
    return c.waiting + c.held + c.ready + c.running


def _layers(job: Job, frame_time_s: float) -> list[dict[str, Any]]:
    names = {layer.name: _name(layer.name) for layer in job.layers if _left(layer) > 0}
    out = []
    for layer in job.layers:
        left = _left(layer)
        if left <= 0:
            continue
        total = max(1, layer.total_tasks)
        frames = max(1, round(frame_count(layer.frames) * left / total))
        out.append({"name": names[layer.name], "frames": frames, "chunk": max(1, min(layer.chunk, frames)),
                    "cores": layer.cores, "memory_mb": layer.memory_mb, "gpus": layer.gpus, "tags": layer.tags,
                    "pools": [_name(p) for p in layer.pools], "limits": dict(layer.limits), "retries": layer.retries,
                    "depends_on": [names[d] for d in layer.depends_on if d in names],
                    "frame_time": frame_time_of(layer, frame_time_s)})
    return out


def scenario_of(farm: FarmState, frame_time_s: float = 60.0, name: str = "farm now") -> dict[str, Any]:
    """The farm as a scenario (a dict, for `parse_scenario` or `merged`): see the module's text."""
    projects, folders, stakes = [], [], []
    groups = _groups(farm.nodes, farm.pools)
    pools = {g["pool"] for g in groups}
    for p in farm.projects:
        projects.append({"name": _name(p.name), "weight": p.weight, "max_cores": p.max_cores, "max_gpus": p.max_gpus})
        folders += [{"project": _name(p.name), "name": _name(f.name), "priority": f.priority,
                     "min_cores": f.min_cores, "max_cores": f.max_cores} for f in p.folders]
        stakes += [{"project": _name(p.name), "pool": _name(s.pool), "guaranteed_cores": s.guaranteed_cores,
                    "max_cores": s.max_cores, "guaranteed_gpus": s.guaranteed_gpus, "max_gpus": s.max_gpus}
                   for s in p.stakes if _name(s.pool) in pools and (s.guaranteed_cores or s.guaranteed_gpus
                                                                   or s.max_cores is not None or s.max_gpus is not None)]
    limits = [{"name": _name(lim.name), "max_total": lim.max_total, "max_per_node": lim.max_per_node}
              for lim in farm.limits]
    services = [{"name": _name(s.name), "defaults": s.defaults.stored()} for s in farm.services]
    jobs: list[dict[str, Any]] = []
    named: dict[int, str] = {}
    for job in sorted(farm.jobs, key=lambda j: j.id):
        layers = _layers(job, frame_time_s)
        if not layers:
            continue
        named[job.id] = _name(f"{job.id}-{job.name}", "job")
        jobs.append({"at": 0, "name": named[job.id], "project": _name(job.project), "priority": job.priority,
                     "layers": layers, "depends_on": [named[d] for d in job.depends_on if d in named],
                     **({"folder": _name(job.folder)} if job.folder else {})})
    return {"name": name, "nodes": groups, "projects": projects, "folders": folders, "stakes": stakes,
            "limits": limits, "services": services, "jobs": jobs}


def _by_name(farm: list[dict[str, Any]], extra: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) \
        -> list[dict[str, Any]]:
    taken = {key(item) for item in farm}
    return farm + [item for item in extra if key(item) not in taken]


def merged(snapshot: dict[str, Any], scenario: Any = None, source: str = "farm") -> Scenario:
    """The snapshot, with a hand-written scenario's settings and its records added (see the module's
    text); refused naming the field as any scenario is (`ScenarioError`)."""
    if scenario is not None and not isinstance(scenario, dict):
        raise ScenarioError(f"{source}: the scenario laid over the farm must be a mapping")
    if not snapshot["jobs"] and not (scenario or {}).get("jobs"):
        raise ScenarioError(f"{source}: no job is queued, running or waiting there, and no scenario adds one: "
                            "nothing to simulate")
    if not scenario:
        return parse_scenario(snapshot, source)
    out = {key: value for key, value in scenario.items() if key not in snapshot}
    out["name"] = scenario.get("name", snapshot["name"])
    out["nodes"] = _by_name(snapshot["nodes"], scenario.get("nodes", []), lambda g: g.get("name"))
    for section in ("projects", "limits", "services"):
        out[section] = _by_name(snapshot[section], scenario.get(section, []), lambda r: r.get("name"))
    out["folders"] = _by_name(snapshot["folders"], scenario.get("folders", []),
                              lambda f: (f.get("project"), f.get("name")))
    out["stakes"] = _by_name(snapshot["stakes"], scenario.get("stakes", []), lambda s: (s.get("project"), s.get("pool")))
    out["jobs"] = snapshot["jobs"] + list(scenario.get("jobs", []))
    return parse_scenario(out, source)
