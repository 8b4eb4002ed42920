"""The figures of a run, drawn from what ran (`engine.Run`): pure functions, tested without a database.

- utilization: busy cores over the cores of the nodes that are up, per time bucket;
- share: each project's part of the busy cores per bucket, against its target, its weight over the
  weights of the projects that had work open (arrived, not finished) then;
- queue wait: a task's first start less the moment it could start (its job's arrival, or the end of
  what its layer or job depends on), p50/p95 per project and per priority;
- licence use per limit over time, and when each job finished; makespan is the last job's end."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from thresher.sim.engine import Attempt, JobRecord, Run


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def overlap(start: float, end: float, lo: float, hi: float) -> float:
    return max(0.0, min(end, hi) - max(start, lo))


def bucket_sums(intervals: Iterable[tuple[float, float, float]], edges: Sequence[float]) -> list[float]:
    """Sum of weight x seconds of each (start, end, weight) inside each bucket [edges[i], edges[i+1])."""
    width = edges[1] - edges[0] if len(edges) > 1 else 1.0
    sums = [0.0] * (len(edges) - 1)
    for start, end, weight in intervals:
        if end <= start:
            continue
        first = max(0, int((start - edges[0]) // width))
        last = min(len(sums) - 1, int((end - edges[0]) // width))
        for i in range(first, last + 1):
            sums[i] += weight * overlap(start, end, edges[i], edges[i + 1])
    return sums


def edges_for(end: float, sample_s: float | None, buckets: int = 100) -> list[float]:
    width = sample_s or max(end / buckets, 1e-9)
    count = max(1, math.ceil(end / width)) if end > 0 else 1
    return [i * width for i in range(count + 1)]


def ready_times(jobs: Sequence[JobRecord], attempts: Sequence[Attempt]) -> dict[tuple[int, str], float]:
    """When each (job, layer) could start: its job's arrival, the end of the jobs it depends on and
    the end of the layers it depends on (their last successful attempt)."""
    done: dict[tuple[int, str], float] = {}
    for a in attempts:
        if a.status == "succeeded":
            key = (a.job, a.layer)
            done[key] = max(done.get(key, 0.0), a.end)
    job_done = {i: max((t for (j, _), t in done.items() if j == i), default=math.inf) for i in range(len(jobs))}
    ready: dict[tuple[int, str], float] = {}
    for i, job in enumerate(jobs):
        base = max([job.arrived] + [job_done.get(d, math.inf) for d in job.depends_on])
        pending = dict(job.layers)
        while pending:
            for name, layer in list(pending.items()):
                if all((i, dep) in ready for dep in layer.depends_on):
                    ready[(i, name)] = max([base] + [done.get((i, dep), math.inf) for dep in layer.depends_on])
                    del pending[name]
    return ready


def queue_waits(jobs: Sequence[JobRecord], attempts: Sequence[Attempt]) -> list[tuple[int, float]]:
    """(job index, seconds) for each task's first attempt."""
    ready = ready_times(jobs, attempts)
    first: dict[int, Attempt] = {}
    for a in attempts:
        if a.task_id not in first or a.start < first[a.task_id].start:
            first[a.task_id] = a
    return [(a.job, max(0.0, a.start - ready[(a.job, a.layer)])) for a in first.values()]


@dataclass
class Report:
    name: str
    makespan: float | None
    end: float
    wall_s: float
    instants: int
    nodes: int
    cores: int
    tasks: int
    attempts: int
    failed_attempts: int
    lost_attempts: int
    unfinished_jobs: int
    mean_utilization: float
    edges: list[float]
    utilization: list[float]
    shares: dict[str, list[float]]
    targets: dict[str, list[float]]
    mean_share: dict[str, float]
    mean_target: dict[str, float]
    wait_by_project: dict[str, dict[str, float | None]]
    wait_by_priority: dict[str, dict[str, float | None]]
    licences: dict[str, list[float]]
    licence_peak: dict[str, int]
    jobs: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _waits(values: list[float]) -> dict[str, float | None]:
    return {"tasks": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}


def build(run: Run) -> Report:
    s = run.scenario
    weights = {p.name: p.weight for p in s.projects}
    jobs, attempts = run.jobs, run.attempts
    finished = [j.finished for j in jobs if j.finished is not None]
    makespan = max(finished) if finished and run.unfinished == 0 else None
    end = max([run.end] + [a.end for a in attempts if a.end <= run.end] + finished)
    edges = edges_for(end, s.sample_s)
    width = edges[1] - edges[0]
    total_cores = sum(n.group.cores for n in run.nodes)
    busy = bucket_sums(((a.start, min(a.end, end), a.cores) for a in attempts), edges)
    utilization = [b / (width * total_cores) if total_cores else 0.0 for b in busy]
    projects = sorted({j.project for j in jobs})
    per_project = {p: bucket_sums(((a.start, min(a.end, end), a.cores) for a in attempts
                                   if jobs[a.job].project == p), edges) for p in projects}
    open_time = {p: bucket_sums(((j.arrived, j.finished if j.finished is not None else end, 1.0)
                                 for j in jobs if j.project == p), edges) for p in projects}
    shares = {p: [v / b if b else 0.0 for v, b in zip(per_project[p], busy, strict=True)] for p in projects}
    targets: dict[str, list[float]] = {p: [] for p in projects}
    for i in range(len(busy)):
        active = [p for p in projects if open_time[p][i] > 0]
        total = sum(weights.get(p, 1.0) for p in active)
        for p in projects:
            targets[p].append(weights.get(p, 1.0) / total if p in active and total else 0.0)
    busy_total = sum(busy)
    mean_share = {p: (sum(per_project[p]) / busy_total if busy_total else 0.0) for p in projects}
    mean_target = {p: (sum(t * b for t, b in zip(targets[p], busy, strict=True)) / busy_total if busy_total else 0.0)
                   for p in projects}
    waits = queue_waits(jobs, attempts)
    by_project: dict[str, list[float]] = {}
    by_priority: dict[str, list[float]] = {}
    for job_index, wait in waits:
        by_project.setdefault(jobs[job_index].project, []).append(wait)
        by_priority.setdefault(str(jobs[job_index].priority), []).append(wait)
    licences = {lim.name: [v / width for v in bucket_sums(((a.start, min(a.end, end), a.limits.get(lim.name, 0))
                                                          for a in attempts if lim.name in a.limits), edges)]
                for lim in s.limits}
    return Report(
        name=s.name, makespan=makespan, end=end, wall_s=run.wall_s, instants=run.instants, nodes=len(run.nodes),
        cores=total_cores, tasks=sum(j.tasks for j in jobs), attempts=len(attempts),
        failed_attempts=sum(1 for a in attempts if a.status == "failed"),
        lost_attempts=sum(1 for a in attempts if a.status == "lost"), unfinished_jobs=run.unfinished,
        mean_utilization=busy_total / (end * total_cores) if end and total_cores else 0.0,
        edges=edges, utilization=utilization, shares=shares, targets=targets, mean_share=mean_share,
        mean_target=mean_target, wait_by_project={p: _waits(v) for p, v in sorted(by_project.items())},
        wait_by_priority={p: _waits(v) for p, v in sorted(by_priority.items(), key=lambda kv: -int(kv[0]))},
        licences=licences, licence_peak={name: _peak(attempts, name) for name in licences},
        jobs=[{"name": j.name, "project": j.project, "priority": j.priority, "state": j.state,
               "arrived": j.arrived, "finished": j.finished, "tasks": j.tasks} for j in jobs],
    )


def _peak(attempts: Sequence[Attempt], name: str) -> int:
    """The most units of a limit in use at once (a sweep over the attempts' starts and ends)."""
    points = sorted([(a.start, 1, a.limits[name]) for a in attempts if name in a.limits]
                    + [(a.end, 0, -a.limits[name]) for a in attempts if name in a.limits])
    peak = level = 0
    for _t, _order, delta in points:
        level += delta
        peak = max(peak, level)
    return peak


def busy_window_shares(intervals: Sequence[tuple[str, float, float, float]]) -> tuple[float, dict[str, float]]:
    """(makespan, share of each project's busy core-seconds) from (project, start, end, cores) runs,
    the shares taken while every project still had work running (from the first start to the moment
    the first project ran its last): the same figures for a simulated run and for a real farm's."""
    if not intervals:
        return 0.0, {}
    start = min(i[1] for i in intervals)
    makespan = max(i[2] for i in intervals) - start
    last: dict[str, float] = {}
    for project, _s, end, _c in intervals:
        last[project] = max(last.get(project, end), end)
    cut = min(last.values())
    used = {p: sum(c * overlap(s, e, start, cut) for q, s, e, c in intervals if q == p) for p in last}
    total = sum(used.values())
    return makespan, {p: (v / total if total else 0.0) for p, v in used.items()}
