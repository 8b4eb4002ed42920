"""**The** rule for how long a layer's tasks take, when a job will be done, and how fast a node is:
all learnt from the farm's own history (issue 9, "scheduling from history: time"). Pure, no I/O;
`server/estimates.py` reads the facts (`db/queries/estimates.py`) and the views show the result.

What it assumes, said once so the pages can say it too:
- A task's time is its succeeded attempts' wall time (ended - started) per frame, times the frames
  of the task: tasks of one layer differ mostly in how many frames they hold. Only the last ~200
  succeeded attempts of a layer are read (a job of 100,000 tasks stays fast).
- The estimate is the median; the range the 25th-75th percentile. Fewer than 5 samples is "rough",
  fewer than 20 "fair", more "good". With no finished task a running task's reported progress is
  extrapolated (elapsed / progress), always "rough"; with neither there is no estimate (None, why).
- A layer keeps the parallelism it has now (its running tasks); a layer running nothing keeps the
  one its finished attempts showed (busy time over the span they covered), else the job's running
  count, else one at a time. Tasks left are the waiting, ready and paused ones (failed and killed
  tasks wait for a person's retry and are not counted). A layer whose tasks left start only when a
  person acts (paused, held for a release by hand: `LayerFacts.waits_for_person`), the layers after it
  and the job have no time ahead and say why, as a failed or killed job does (`STOPPED`).
- A layer waiting on others starts when the last of them ends (layers in dependency order).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Iterable, Mapping, Protocol, Sequence

ROUGH_BELOW = 5     # fewer samples than this: "rough"
FAIR_BELOW = 20     # fewer than this: "fair"; otherwise "good"


@dataclass(frozen=True)
class Finished:
    """A succeeded attempt: its wall time, the frames its task held, when it ran (seconds on any one clock)."""

    seconds: float
    frames: int = 1
    started: float = 0.0
    ended: float = 0.0


@dataclass(frozen=True)
class Running:
    """A running task: how long it has run, its reported progress (0..100, None when none) and frames."""

    elapsed_s: float
    progress: float | None = None
    frames: int = 1


@dataclass(frozen=True)
class LayerFacts:
    """What the rule knows of one layer."""

    name: str
    finished: Sequence[Finished] = ()
    running: Sequence[Running] = ()
    tasks_left: int = 0             # not started yet: waiting, ready, paused
    frames_left: int = 0            # the frames those tasks hold
    frames_per_task: float = 1.0    # the layer's mean frames per task
    depends_on: Sequence[str] = ()
    # Why what is left of it starts only when a person acts ("the layer is paused", held for a release):
    # its running tasks still end, the rest has no time ahead. None: it runs as things stand.
    waits_for_person: str | None = None
    # What of it did not succeed ("2 tasks failed, 1 killed"); once nothing of it is left, it "ended" with
    # that, not "done". None: every task that ended succeeded (or was skipped by hand).
    unsuccessful: str | None = None


@dataclass(frozen=True)
class Estimate:
    """How long a task takes and when the layer (or job) is done; `eta_s` None with `reason` when unknown."""

    task_s: float | None
    low_s: float | None
    high_s: float | None
    samples: int
    eta_s: float | None
    confidence: str             # "rough", "fair", "good"; "none" without an estimate; "done" when finished
    basis: str                  # what it rests on, in words
    reason: str | None = None   # why there is no estimate


@dataclass
class JobEstimate:
    job: Estimate
    layers: dict[str, Estimate] = field(default_factory=dict)


def confidence(samples: int) -> str:
    return "rough" if samples < ROUGH_BELOW else "fair" if samples < FAIR_BELOW else "good"


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def per_frame_times(finished: Iterable[Finished]) -> list[float]:
    return [max(f.seconds, 0.0) / max(f.frames, 1) for f in finished]


def history_parallelism(finished: Sequence[Finished]) -> float | None:
    """How many of these attempts ran at once on average: their busy time over the span they covered."""
    if len(finished) < 2:
        return None
    span = max(f.ended for f in finished) - min(f.started for f in finished)
    busy = sum(max(f.seconds, 0.0) for f in finished)
    return max(busy / span, 1.0) if span > 0 else None


def _remaining(run: Running, per_frame: float | None) -> float:
    """Time left of a running task: from its progress when it reports one, else from the estimate."""
    if run.progress is not None and 0 < run.progress < 100:
        return run.elapsed_s * (100.0 - run.progress) / run.progress
    if per_frame is None:
        return 0.0
    return max(per_frame * max(run.frames, 1) - run.elapsed_s, 0.0)


def unsuccessful_words(failed: int = 0, killed: int = 0) -> str | None:
    """What of a layer did not succeed: "2 tasks failed, 1 killed", "1 task killed"; None when nothing."""
    parts = [(n, word) for n, word in ((failed, "failed"), (killed, "killed")) if n]
    if not parts:
        return None
    (n, word), rest = parts[0], parts[1:]
    return ", ".join([f"{n} task{'s' if n != 1 else ''} {word}"] + [f"{m} {w}" for m, w in rest])


def estimate_layer(facts: LayerFacts, *, start_after_s: float = 0.0, fallback_parallelism: int = 0) -> Estimate:
    """A layer's task time and the time until its last task ends, `start_after_s` from now at the
    earliest (when the layers it waits for end)."""
    per_frame = per_frame_times(facts.finished)
    samples = len(per_frame)
    if not facts.running and not facts.tasks_left:
        mid = statistics.median(per_frame) * facts.frames_per_task if per_frame else None
        if facts.unsuccessful:
            return Estimate(mid, mid, mid, samples, 0.0, "done", ENDED, facts.unsuccessful)
        return Estimate(mid, mid, mid, samples, 0.0, "done", "finished")
    if per_frame:
        unit: float | None = statistics.median(per_frame)
        low_unit, high_unit = _quantile(per_frame, 0.25), _quantile(per_frame, 0.75)
        word = confidence(samples)
        basis = f"{samples} finished task{'s' if samples != 1 else ''}"
    else:
        guesses = [r.elapsed_s * 100.0 / r.progress / max(r.frames, 1) for r in facts.running
                   if r.progress is not None and r.progress > 0]
        if not guesses:
            why = "no task of it has finished yet" if facts.running or not facts.depends_on \
                else "it waits for " + ", ".join(facts.depends_on) + " and none of its tasks has run"
            return Estimate(None, None, None, 0, None, "none", "no estimate yet", why)
        unit = statistics.median(guesses)
        low_unit, high_unit = min(guesses), max(guesses)
        word, basis = "rough", f"progress of {len(guesses)} running task{'s' if len(guesses) != 1 else ''}"
    assert unit is not None
    ahead = [_remaining(r, unit) for r in facts.running]
    parallel = len(facts.running) or history_parallelism(facts.finished) or fallback_parallelism or 1
    queued = facts.frames_left * unit
    eta = max((sum(ahead) + queued) / parallel, max(ahead, default=0.0))
    if facts.tasks_left:  # the last queued task runs whole, after a slot frees up
        eta = max(eta, min(ahead, default=0.0) + unit * facts.frames_left / facts.tasks_left)
    fpt = facts.frames_per_task
    return Estimate(unit * fpt, low_unit * fpt, high_unit * fpt, samples, start_after_s + eta, word, basis)


ENDED = "ended"
"""The basis of a finished layer (or job) of which some tasks failed or were killed: its `reason` says which."""

STOPPED = "stopped"
"""The basis of an estimate of work that will not run as things stand (`estimate_job`'s `stopped`, a
layer's `waits_for_person`)."""


def _stopped(est: Estimate, reason: str) -> Estimate:
    """The same task times, no time ahead: what is left starts only when someone acts."""
    return Estimate(est.task_s, est.low_s, est.high_s, est.samples, None, "none", STOPPED, reason)


def estimate_job(layers: Sequence[LayerFacts], *, stopped: str | None = None) -> JobEstimate:
    """Every layer's estimate, in dependency order, and the job's: when its last layer ends. The job
    has no estimate while a layer with work left has none (its reason names that layer).

    `stopped` says why nothing more of the job runs until someone acts ("the job failed", "... was
    killed", "... is blocked"): then a layer with work left has no time ahead, and says that reason
    rather than "no estimate yet" (a layer that waits for a failed one never starts)."""
    by_name = {f.name: f for f in layers}
    done: dict[str, Estimate] = {}
    running_total = sum(len(f.running) for f in layers)

    graph = {f.name: [d for d in f.depends_on if d in by_name] for f in layers}
    try:  # a job chains up to thousands of layers: an order, not recursion
        order = list(TopologicalSorter(graph).static_order())
    except CycleError:  # refused at submit; never trust it with a loop
        order = list(by_name)
    for name in order:
        facts = by_name[name]
        deps = {d: done[d] for d in graph[name] if d in done}
        unknown = [d for d, e in deps.items() if e.eta_s is None]
        start = max((e.eta_s or 0.0 for e in deps.values()), default=0.0)
        own = estimate_layer(facts, start_after_s=start, fallback_parallelism=running_total)
        held_up = [d for d, e in deps.items() if e.basis == STOPPED]
        if own.confidence == "done":
            pass
        elif facts.waits_for_person and facts.tasks_left:
            own = _stopped(own, facts.waits_for_person)
        elif held_up:  # it starts only after a layer that waits for a person
            why = deps[held_up[0]].reason or ""
            own = _stopped(own, why if why.startswith("it waits for ") else f"it waits for {held_up[0]} ({why})")
        elif unknown and own.eta_s is not None:
            own = Estimate(own.task_s, own.low_s, own.high_s, own.samples, None, own.confidence, own.basis,
                           "it waits for " + ", ".join(unknown) + ", which has no estimate yet")
        done[name] = own
    out = {f.name: done[f.name] for f in layers}
    open_ = {n: e for n, e in out.items() if e.confidence != "done"}
    samples = sum(e.samples for e in out.values())
    if not open_:
        ended = [n for n, e in out.items() if e.basis == ENDED]
        if ended:
            return JobEstimate(Estimate(None, None, None, samples, 0.0, "done", ENDED,
                                        f"layer {ended[0]}: {out[ended[0]].reason}"), out)
        return JobEstimate(Estimate(None, None, None, samples, 0.0, "done", "finished"), out)
    if stopped:
        for n, e in open_.items():
            out[n] = _stopped(e, stopped)
        return JobEstimate(Estimate(None, None, None, samples, None, "none", STOPPED, stopped), out)
    waiting = [n for n, e in open_.items() if e.basis == STOPPED]
    if waiting:
        return JobEstimate(Estimate(None, None, None, samples, None, "none", STOPPED,
                                    f"layer {waiting[0]}: {open_[waiting[0]].reason}"), out)
    missing = [n for n, e in open_.items() if e.eta_s is None]
    if missing:
        more = f" (and {len(missing) - 1} more layer{'s' if len(missing) > 2 else ''})" if len(missing) > 1 else ""
        return JobEstimate(Estimate(None, None, None, samples, None, "none", "no estimate yet",
                                    f"layer {missing[0]}: {open_[missing[0]].reason or 'it has none'}{more}"), out)
    words = [e.confidence for e in open_.values()]
    word = next(w for w in ("rough", "fair", "good") if w in words)
    eta = max(e.eta_s or 0.0 for e in open_.values())
    basis = f"{samples} finished task{'s' if samples != 1 else ''}" if samples else "progress of running tasks"
    return JobEstimate(Estimate(None, None, None, samples, eta, word, basis), out)


# -- node speed ------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeSpeed:
    """How fast a node renders relative to the farm: 1.0 as fast, 2.0 twice as fast, on `layers` layers."""

    speed: float
    layers: int
    samples: int


def node_speed(node_id: int, own: Mapping[int, Sequence[float]],
               layers: Mapping[int, Sequence[tuple[int, float]]]) -> NodeSpeed | None:
    """This node's speed from its own per-frame seconds per layer (`own`) and each layer's (node id,
    per-frame seconds) samples on the farm (`layers`): for each layer that ran on this node and on at
    least one other, the layer's median per-frame time over this node's median there; the node's
    speed is the geometric mean of those ratios (a node twice as fast on one layer and half as fast
    on another is as fast as the farm). None when no layer compares it with another node."""
    ratios: list[float] = []
    samples = 0
    for layer_id, mine in own.items():
        rows = layers.get(layer_id, ())
        if not mine or not any(n != node_id for n, _ in rows):
            continue
        mine_median = statistics.median(mine)
        layer_median = statistics.median(t for _, t in rows)
        if mine_median <= 0 or layer_median <= 0:
            continue
        ratios.append(layer_median / mine_median)
        samples += len(mine)
    if not ratios:
        return None
    return NodeSpeed(round(statistics.geometric_mean(ratios), 3), len(ratios), samples)


# -- words -----------------------------------------------------------------------------------

class _Shown(Protocol):
    """What the words read: an `Estimate` (frozen) or the wire's `JobEstimate`; read-only members
    so that a frozen dataclass fits."""

    @property
    def eta_s(self) -> float | None: ...
    @property
    def task_s(self) -> float | None: ...
    @property
    def low_s(self) -> float | None: ...
    @property
    def high_s(self) -> float | None: ...
    @property
    def samples(self) -> int: ...
    @property
    def confidence(self) -> str: ...
    @property
    def basis(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


def about(seconds: float) -> str:
    """A span as a person reads an estimate: "under a minute", "about 25 min", "about 3 h 10 min"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"


def words(est: _Shown) -> str:
    """What the CLI and the dashboard say beside the clock time: "about 25 min, from 40 finished
    tasks, good"; "done"; "ended: 2 tasks failed" (`ENDED`); "none: the job failed" (`STOPPED`); or "no
    estimate yet: <why>"."""
    if est.confidence == "done":
        return f"ended: {est.reason}" if est.basis == ENDED and est.reason else "done"
    if est.eta_s is None and est.basis == STOPPED:
        return f"none: {est.reason}"
    if est.eta_s is None:
        return f"no estimate yet: {est.reason}" if est.reason else "no estimate yet"
    return f"{about(est.eta_s)}, from {est.basis}, {est.confidence}"


def _span(s: float) -> tuple[str, str]:
    """A short time as a person reads it, as (number, unit): milliseconds below 0.1 s (an `echo` of 12 ms is
    not "0.0 s"), tenths below 10 s (a short task of 0.2 s is not "0 s"), then whole seconds."""
    if s < 0.0995:
        return f"{max(1, round(s * 1000))}", "ms"
    return (f"{s:.1f}" if s < 9.95 else f"{s:.0f}"), "s"


def task_words(est: _Shown) -> str:
    """A task's estimated time: "~2 min/task", "~0.3 s/task", "~12 ms/task" or "-"."""
    if est.task_s is None:
        return "-"
    if est.task_s < 60:
        number, unit = _span(est.task_s)
        return f"~{number} {unit}/task"
    return f"~{about(est.task_s).removeprefix('about ')}/task"


def task_range_words(est: _Shown) -> str:
    """The spread of a layer's finished tasks beside `task_words`: "(0.2–0.4 s)", "(8–20 ms)", "(40 ms–0.2 s)",
    or "" without samples."""
    if est.low_s is None or est.high_s is None or not est.samples:
        return ""
    (low, low_unit), (high, high_unit) = _span(est.low_s), _span(est.high_s)
    return f"({low}–{high} {high_unit})" if low_unit == high_unit else f"({low} {low_unit}–{high} {high_unit})"
