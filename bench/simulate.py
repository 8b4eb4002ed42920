"""The farm simulator's speed: 1,000 nodes, 100,000 tasks, one simulated day (issue 10's figure).

    .venv/bin/python bench/simulate.py                     # the issue's size, SQLite, prints wall seconds
    .venv/bin/python bench/simulate.py --nodes 100 --tasks 10000 --profile   # smaller, with a cProfile top 25
    .venv/bin/python bench/simulate.py --db postgresql://...                 # on PostgreSQL
    .venv/bin/python bench/simulate.py --hours 2.5         # the issue's farm, only its first 2.5 simulated hours

The scenario: `--nodes` nodes of 8 cores in two pools (a tenth of them GPU nodes), four projects of
weights 4:3:2:1 (one with a stake in the GPU pool), a licence limit, and 100 jobs of `--tasks`/100
single-frame tasks arriving over the first 16 hours, frame times lognormal around a median sized so
the farm is busy for about a day. Events are handled at a 30 s tick (`--tick`; the tasks last about 1.5 h). Nothing is asserted:
the figure is printed, with the simulated makespan, the number of instants, and a digest of every
dispatch decision (the same digest before and after a change: it decided the same).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import sys
import time
from typing import Any

from thresher.sim.engine import simulate
from thresher.sim.report import build
from thresher.sim.scenario import parse_scenario


def scenario(nodes: int, tasks: int, tick_s: float, hours: float | None = None) -> dict[str, Any]:
    jobs = 100
    per_job = max(1, tasks // jobs)
    gpu_nodes = nodes // 10
    cores = 8 * (nodes - gpu_nodes)
    # median frame time so that the tasks fill the CPU pool's cores for about 20 hours of a day
    median = 0.8 * 86_400 * cores / max(1, tasks - tasks // 10) / 1.13  # lognormal sigma 0.5: mean = 1.13 x median
    projects = ["alpha", "beta", "gamma", "delta"]
    trace = []
    for j in range(jobs):
        gpu = j % 10 == 9
        layer: dict[str, Any] = {"name": "render", "frames": per_job, "memory_mb": 2000,
                                 "frame_time": {"dist": "lognormal", "seconds": round(median, 1), "sigma": 0.5}}
        if gpu:  # 2 GPUs a node bound the GPU pool: a quarter of the frame time fills it as long
            layer.update(gpus=1, cores=4, pools=["gpu"])  # two fill a GPU node's 8 cores
            layer["frame_time"]["seconds"] = round(median / 4, 1)
        if j % 7 == 0:
            layer["limits"] = {"katana": 1}
        trace.append({"at": j * 576.0, "name": f"job{j:03d}", "project": projects[j % 4], "priority": 50 + (j % 3) * 10,
                      "layers": [layer]})
    return {
        "name": f"bench {nodes} nodes {tasks} tasks", "seed": 1, "tick_s": tick_s, "sample_s": 900,
        "until_s": 86_400 * 2 if hours is None else hours * 3600,
        "nodes": [{"name": "cpu", "count": nodes - gpu_nodes, "cores": 8, "memory_mb": 32_000},
                  {"name": "gpu", "count": gpu_nodes, "cores": 8, "memory_mb": 64_000, "gpus": 2, "pool": "gpu"}],
        "projects": [{"name": p, "weight": w} for p, w in zip(projects, (4, 3, 2, 1), strict=True)],
        "stakes": [{"project": "delta", "pool": "gpu", "guaranteed_cores": 40}],
        "limits": [{"name": "katana", "max_total": 500}],
        "jobs": trace,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--tick", type=float, default=30.0)
    parser.add_argument("--hours", type=float, default=None,
                        help="stop after this many simulated hours (a shorter day to compare speed; default: to the end)")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--profile", action="store_true", help="print the 25 costliest functions (cProfile)")
    args = parser.parse_args(argv)
    spec = parse_scenario(scenario(args.nodes, args.tasks, args.tick, args.hours))
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    cpu = time.process_time()
    run = simulate(spec, args.db)
    cpu = time.process_time() - cpu
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    report = build(run)
    makespan = f"{report.makespan / 3600:.1f} h" if report.makespan else f"unfinished ({report.unfinished_jobs} jobs)"
    print(f"{args.nodes} nodes, {report.tasks} tasks, {report.attempts} attempts: simulated makespan {makespan}, "
          f"mean utilization {100 * report.mean_utilization:.0f}%, {run.instants} instants, "
          f"{run.dispatch_calls} dispatch calls")
    print(f"wall seconds: {run.wall_s:.1f} (CPU seconds of this process: {cpu:.1f}; on a shared machine the "
          "wall time is the CPU time plus what other processes took)")
    print(f"decisions: {decisions(run)}")
    return 0


def decisions(run: Any) -> str:
    """A digest of every attempt (its task, node, start, end and outcome): two runs of one scenario made
    the same dispatch decisions when it is the same, so a speed-up can show it changed none."""
    digest = hashlib.sha256()
    for a in run.attempts:
        digest.update(f"{a.task_id}:{a.node}:{a.start:.3f}:{a.end:.3f}:{a.status};".encode())
    return f"{len(run.attempts)} attempts, sha256 {digest.hexdigest()[:16]}"


if __name__ == "__main__":
    raise SystemExit(main())
