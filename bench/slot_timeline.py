"""Where a slot's time goes between one task's exit and the next one's start.

    .venv/bin/python bench/slot_timeline.py --tasks 300 --sleep 0.1
    .venv/bin/python bench/slot_timeline.py --tasks 1000 --command true

Runs one job through a real farm (as `bench/overhead.py` does) with the agents' step timeline on
(`agent/timeline.py`), then prints the median of each step: within a finished attempt (exit seen, output
drained, verdict, report spooled, reporter woken, report sent, report accepted), and from there to the
next assignment the same agent receives and that attempt's process start. The last line is the whole
gap, a slot's exit to the next start on the same agent (all slots busy, so the next start is the slot's).
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import load, task_command, through_farm  # noqa: E402

STEPS = ["exit_seen", "drained", "judged", "spooled", "woke_reporter", "report_sent", "report_accepted"]


def read_timelines(folder: Path) -> list[dict[str, dict[str, float]]]:
    """Per agent process: attempt id -> step -> unix time."""
    agents = []
    for path in sorted(folder.glob("*.tl")):
        marks: dict[str, dict[str, float]] = defaultdict(dict)
        for line in path.read_text().splitlines():
            step, attempt, when = line.split()
            marks[attempt].setdefault(step, float(when))
        agents.append(marks)
    return agents


def breakdown(agents: list[dict[str, dict[str, float]]]) -> list[tuple[str, float, float, int]]:
    """(step, median ms, 90th percentile ms, samples) for each step of the slot's gap."""
    deltas: dict[str, list[float]] = defaultdict(list)
    for marks in agents:
        for steps in marks.values():
            for before, after in zip(STEPS, STEPS[1:], strict=False):
                if before in steps and after in steps:
                    deltas[f"{before} -> {after}"].append(steps[after] - steps[before])
            if "assigned" in steps and "started" in steps:
                deltas["assigned -> started"].append(steps["started"] - steps["assigned"])
        # The next assignment after each exit on this agent: the first one received after it.
        assigned = sorted(s["assigned"] for s in marks.values() if "assigned" in s)
        starts = sorted(s["started"] for s in marks.values() if "started" in s)
        for steps in marks.values():
            for origin, name in (("report_sent", "report_sent -> next assigned"),
                                 ("report_accepted", "report_accepted -> next assigned")):
                if origin in steps:
                    i = bisect.bisect_left(assigned, steps[origin] - (0.05 if origin == "report_accepted" else 0))
                    if i < len(assigned):
                        deltas[name].append(assigned[i] - steps[origin])
            if "exit_seen" in steps:
                i = bisect.bisect_left(starts, steps["exit_seen"])
                if i < len(starts):
                    deltas["exit_seen -> next started (whole gap)"].append(starts[i] - steps["exit_seen"])
    order = [f"{a} -> {b}" for a, b in zip(STEPS, STEPS[1:], strict=False)] + [
        "report_sent -> next assigned", "report_accepted -> next assigned", "assigned -> started",
        "exit_seen -> next started (whole gap)"]
    return [(name, statistics.median(deltas[name]) * 1000, _p90(deltas[name]) * 1000, len(deltas[name]))
            for name in order if deltas[name]]


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def slot_use(agents: list[dict[str, dict[str, float]]], slots: int, submitted: float, finished: float) -> str:
    """Where the job's time went as a whole: from the submit to the first process start, the share of
    slot time spent running a task (each attempt from its start to its exit seen) between the first start
    and the last exit, and from the last exit to the job's `finished_at`."""
    runs = [(s["started"], s["exit_seen"]) for marks in agents for s in marks.values()
            if "started" in s and "exit_seen" in s]
    if not runs:
        return "no runs"
    first, last = min(r[0] for r in runs), max(r[1] for r in runs)
    busy = sum(end - start for start, end in runs)
    return (f"submit -> first start {1000 * (first - submitted):.0f} ms; slots busy {100 * busy / (slots * (last - first)):.1f}% "
            f"of {last - first:.2f} s; last exit -> job finished {1000 * (finished - last):.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--command", help="what each task runs instead of `sleep S`, e.g. `true`")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--ahead", type=int, default=0, help="agent setting `tasks_ahead`")
    parser.add_argument("--compare", action="store_true",
                        help="first with `finish_asks_work` off (work only from the long poll), then on")
    args = parser.parse_args(argv)
    command = task_command(args.sleep, args.command)
    for asks in ([False, True] if args.compare else [True]):
        with tempfile.TemporaryDirectory(prefix="thresher-timeline-") as tmp:
            marks = Path(tmp) / "timeline"
            marks.mkdir()
            print(f"{args.tasks} tasks of `{' '.join(command)}`, {args.slots} slots, finish_asks_work={asks}, tasks_ahead={args.ahead}; "
                  f"{load()}", flush=True)
            env = {"THRESHER_SLOT_TIMELINE": str(marks), "THRESHER_AGENT_FINISH_ASKS_WORK": str(asks).lower(),
                   "THRESHER_AGENT_TASKS_AHEAD": str(args.ahead)}
            run = through_farm(f"sqlite:///{Path(tmp) / 'farm.db'}", Path(tmp) / "farm", args.tasks,
                               args.agents, args.slots, command, env=env)
            print(f"farm: {run.seconds:.2f} s, {args.tasks / run.seconds:.0f} tasks/s; {run.cpu_line()}; {load()}")
            print(f"{'step':<42} {'median ms':>10} {'p90 ms':>8} {'n':>6}")
            agents = read_timelines(marks)
            for name, ms, p90, n in breakdown(agents):
                print(f"{name:<42} {ms:>10.2f} {p90:>8.2f} {n:>6}")
            print(slot_use(agents, args.slots, run.submitted, run.submitted + run.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
