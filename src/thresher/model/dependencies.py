"""The one rule for dependencies: given what a waiter (a job, a layer or a task) waits for and the
states of those targets, is it still waiting, released, or blocked (and why, in a wrangler's words)?

Kinds: a job on a job, a layer on a layer (of its job or of another), a layer's tasks on another
layer frame by frame (expanded at submit into task-on-task edges by `frame_edges`), a task on a task.
Modes: `success` (the default: the target must succeed; a failed or killed target blocks the waiter)
or `finished` (any end will do). A blocked waiter is never stranded silently: its job's state is
`blocked`, its reason names the target, and a target retried to success releases it by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Iterable, Iterator, Mapping, Sequence

from thresher.model.frames import joined_frames
from thresher.model.states import DONE_TASK_STATES, FINAL_JOB_STATES, TASK_STATES, JobState, TaskState


class Kind(StrEnum):
    JOB = "job"        # waits for a whole job
    LAYER = "layer"    # waits for a whole layer
    FRAME = "frame"    # a task waits for the tasks of a layer covering its frames (stored as task rows)
    TASK = "task"      # a task waits for a task


class Mode(StrEnum):
    SUCCESS = "success"    # the target must succeed (or be skipped by hand)
    FINISHED = "finished"  # the target must be over, whichever way


class Verdict(StrEnum):
    WAITING = "waiting"
    RELEASED = "released"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Status:
    verdict: Verdict
    reason: str | None = None  # for waiting and blocked: what it is waiting for, or what blocks it

    @property
    def words(self) -> str | None:
        """As the job page and `thresher wait` say it ("blocked: job 12 layer render failed")."""
        if self.verdict == Verdict.RELEASED:
            return None
        return f"{self.verdict}: {self.reason}" if self.verdict == Verdict.BLOCKED else f"waiting for {self.reason}"


RELEASED = Status(Verdict.RELEASED)
# Task states that end a task for good (until retried): a `finished` target is met by any of them.
ENDED_TASK_STATES = frozenset({*DONE_TASK_STATES, TaskState.FAILED, TaskState.KILLED})
_BAD_TASK_STATES = (TaskState.FAILED, TaskState.KILLED)
# Their complements, spelled out so that a database looks each state up in its index.
UNDONE_TASK_STATES = tuple(s for s in TASK_STATES if s not in DONE_TASK_STATES)
UNENDED_TASK_STATES = tuple(s for s in TASK_STATES if s not in ENDED_TASK_STATES)


#: Finished job states whose rows still decide what waits for them: a job in one of them is not archived
#: or deleted while an unfinished job waits for it to succeed (`server/retention.py`). Once its tasks or
#: edges are gone, what waited for it reads as met: a failed or killed job's waiters, blocked until then,
#: would run on failed work (or, their edges deleted, stay blocked with nothing left to say why). A
#: succeeded job's waiters are met anyway.
HOLDS_ITS_WAITERS = (JobState.FAILED, JobState.KILLED)


def job_target(mode: str, what: str, state: str) -> Status:
    """A job waited for, in state `state`. A blocked target blocks its waiters whatever the mode: it
    will not end by itself, and saying "waiting" would strand them quietly."""
    if state == JobState.BLOCKED:
        return Status(Verdict.BLOCKED, f"{what} is blocked")
    if mode == Mode.FINISHED:
        return RELEASED if state in FINAL_JOB_STATES else Status(Verdict.WAITING, f"{what} ({state})")
    if state == JobState.SUCCEEDED:
        return RELEASED
    if state in (JobState.FAILED, JobState.KILLED):
        return Status(Verdict.BLOCKED, f"{what} {state}")
    return Status(Verdict.WAITING, f"{what} ({state})")


@dataclass(frozen=True)
class TaskFacts:
    """What the rule needs of a layer's (or one task's) tasks: whether one failed or was killed, whether
    some are not done (succeeded or skipped), not ended at all, or waiting. Four yes-or-no questions a
    database answers from an index, however many tasks the layer has."""

    bad: str | None = None    # failed or killed, if some task is (failed first)
    undone: bool = False
    unended: bool = False
    waiting: bool = False

    @classmethod
    def of_counts(cls, counts: Mapping[str, int]) -> "TaskFacts":
        has = {state for state, n in counts.items() if n}
        return cls(bad=next((str(s) for s in _BAD_TASK_STATES if s in has), None),
                   undone=not has <= DONE_TASK_STATES, unended=not has <= ENDED_TASK_STATES,
                   waiting=TaskState.WAITING in has)


def tasks_target(mode: str, what: str, facts: TaskFacts, job_state: str | None = None) -> Status:
    """A layer (or one task) waited for, by `facts` of its tasks; `job_state` is its job's, so that a
    layer held by a blocked job blocks in turn."""
    if mode == Mode.SUCCESS and facts.bad:
        return Status(Verdict.BLOCKED, f"{what} {facts.bad}")
    if not (facts.unended if mode == Mode.FINISHED else facts.undone):
        return RELEASED
    if job_state == JobState.BLOCKED and facts.waiting:
        return Status(Verdict.BLOCKED, f"{what} is blocked")
    return Status(Verdict.WAITING, what)


def bad_frames(what: str, frames_by_state: Mapping[str, Iterable[str]]) -> Status:
    """Tasks of `what` (a layer) that had to succeed and failed or were killed, held by: all their frames
    named, as one range per state (`job 30 layer main frames 1-2 failed`), not the first task's only,
    which read as if the other frames were fine."""
    parts = [f"frames {joined_frames(frames)} {state}" for state, frames in sorted(frames_by_state.items())]
    return Status(Verdict.BLOCKED, f"{what} {', '.join(parts)}")


def combine(statuses: Iterable[Status]) -> Status:
    """All of a waiter's targets together: blocked by the first that blocks, else waiting while any
    waits (naming them all), else released."""
    waiting: list[str] = []
    for status in statuses:
        if status.verdict == Verdict.BLOCKED:
            return status
        if status.verdict == Verdict.WAITING and status.reason:
            waiting.append(status.reason)
    return Status(Verdict.WAITING, ", ".join(waiting)) if waiting else RELEASED


Span = tuple[int, int, int]  # (first frame, last frame, id): the frames a task covers, inclusive


def frame_edges(waiters: Sequence[Span], targets: Sequence[Span]) -> Iterator[tuple[int, int]]:
    """(waiter id, target id) for every waiter task and target task whose frame ranges overlap: the
    task of B covering frame f waits only for the tasks of A covering f, whatever the chunk sizes, and
    every tile or wedge task of a frame counts (they are spans of their own).

    A sweep over both lists sorted by first frame, not every pair: the time is the number of spans
    plus the number of edges, so a 10,000-task layer on another costs about 10,000 edges, not 10^8."""
    ordered = sorted(targets)
    active: list[Span] = []   # targets started before the current waiter, that may still overlap it
    i = 0
    for first, last, waiter in sorted(waiters):
        while i < len(ordered) and ordered[i][0] <= last:
            active.append(ordered[i])
            i += 1
        active = [span for span in active if span[1] >= first]
        for start, _end, target in active:
            if start <= last:
                yield waiter, target


#: The columns of an edge row, but its id: what `carried_edges` moves and writes back.
EDGE_COLUMNS = ("waiter_job_id", "waiter_layer_id", "waiter_task_id", "target_job_id", "target_layer_id",
                "target_task_id", "kind", "mode")


def carried_edges(edges: Iterable[Mapping[str, Any]], new_of: Mapping[int, int]) -> list[dict[str, Any]]:
    """The task edges of tasks a rewrite replaced (`chunk: auto` regrouping held tasks), moved onto the
    tasks that replace them (`new_of`: old task id -> new task id): a new task waits for whatever one of
    its old tasks waited for, and what waited for one of them waits for it.

    The edges themselves are carried, not derived again from the frames: an edge a wrangler dropped
    stays dropped, a task-on-task edge stays, and nothing that did not wait starts waiting again. Two
    old tasks merged into one new task lose the edge between them (a task never waits for itself);
    edges that become the same are written once."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for edge in edges:
        row = {name: edge[name] for name in EDGE_COLUMNS}
        for end in ("waiter_task_id", "target_task_id"):
            task = row[end]
            if isinstance(task, int) and task in new_of:
                row[end] = new_of[task]
        if row["waiter_task_id"] is not None and row["waiter_task_id"] == row["target_task_id"]:
            continue
        out.setdefault(tuple(row.values()), row)
    return list(out.values())
