"""State changes of tasks, attempts and jobs after dispatch: reports, steering and lost nodes.

Every function runs inside the caller's write transaction and returns what changed, so the caller can
wake waiting agents after the commit. Each transition is a compare-and-set on the current state, so a
retried HTTP call or a late report never makes a task succeed twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection

from thresher.model.states import (
    FINAL_JOB_STATES,
    LIVE_ATTEMPT_STATES,
    AttemptState,
    JobState,
    TaskState,
    job_state_from_counts,
)
from thresher.model.steering_rule import Action, job_refusal, task_refusal
from thresher.server import dependencies, failures, late_reports, layer_pause, log_cap, log_text, scouts, usage
from thresher.server.clock import run_start, utcnow
from thresher.server.db import dialects
from thresher.server.db.queries import jobs as qj
from thresher.server.db.queries import reports as qr
from thresher.server.db.queries import steering as qs
from thresher.server.errors import Conflict, NotFound
from thresher.server.failures import DEFAULT_LIMITS as DEFAULT_FAILURE_LIMITS
from thresher.server.failures import FailureLimits
from thresher.server.memory import MemoryHistory


@dataclass
class Changes:
    """What a transition did that agents should hear about."""

    ready: int = 0                              # tasks that became ready
    nodes: set[int] = field(default_factory=set)  # nodes with freed resources or kills to do
    settle: set[tuple[int, int]] = field(default_factory=set)  # (job, layer) to check after the commit
    jobs: set[int] = field(default_factory=set)   # jobs whose state changed or tasks were released: dashboards

    def merge(self, other: "Changes") -> "Changes":
        self.ready += other.ready
        self.nodes |= other.nodes
        self.settle |= other.settle
        self.jobs |= other.jobs
        return self


# ---------------------------------------------------------------------------------------------
# Job state and dependencies


def task_counts(conn: Connection, job_id: int) -> dict[str, int]:
    return {r.state: r.n for r in conn.execute(qj.TASK_COUNTS, {"job_id": job_id})}


def jobs_started(conn: Connection, job_ids: Iterable[int]) -> None:
    """Tasks of these jobs were just claimed: the jobs are running (what `job_state_from_counts` says of a
    job with a running task), written in one statement without deriving each job from its counts. No
    agent needs to hear of it (no task became ready, no node freed); the work route tells dashboards."""
    ids = sorted(set(job_ids))
    if ids:
        conn.execute(qj.JOBS_STARTED, {"job_ids": ids})


def refresh_job(conn: Connection, job_id: int, now: datetime, *, _seen: set[int] | None = None) -> Changes:
    """Recompute a job's state from its tasks, releasing its waiting tasks whose dependencies are met
    (`dependencies.release`: blocked, not stranded, when one failed); then derive again the other jobs
    waiting on it (and theirs, as far as their states change), so a failed dependency blocks them and
    a retried one that succeeds releases them.

    Holds the job's row lock to the end of the transaction (see `queries.jobs.LOCK_JOB`)."""
    top = _seen is None
    seen = _seen if _seen is not None else set()
    seen.add(job_id)
    job = conn.execute(qj.LOCK_JOB, {"job_id": job_id}).first()
    if job is None:
        return Changes()
    scouts.release_done(conn, job_id)  # scouts done some other way than a report (a skip): the rest goes
    ready, blocked = dependencies.release(conn, job)
    changes = Changes(ready=ready)
    state = job_state_from_counts(task_counts(conn, job_id), paused=job.paused, killed=job.killed,
                                  blocked=blocked is not None)
    if state != job.state:
        finished_at = now if state in FINAL_JOB_STATES else None
        conn.execute(qj.SET_JOB_STATE, {"job_id": job_id, "b_state": state, "b_finished_at": finished_at})
    if state != job.state or ready:
        changes.jobs.add(job_id)
    if top or state != job.state:
        for waiter in dependencies.waiting_jobs_on(conn, job_id):
            if waiter not in seen:
                changes.merge(refresh_job(conn, waiter, now, _seen=seen))
    return changes


def refresh_job_after_finish(conn: Connection, job_id: int, layer_id: int, now: datetime) -> Changes:
    """The cheap path for the common case: a task ended while its job still has work in flight.

    The job row is locked first, so of two reports ending the last tasks together the later one
    sees the earlier one's task as ended and completes the layer and the job."""
    dialects.lock_job(conn, job_id)
    still = conn.execute(qj.LAYER_OPEN_JOB_BUSY, {"layer_id": layer_id, "job_id": job_id}).one()
    if still.layer_open and still.job_busy:
        return Changes()
    return refresh_job(conn, job_id, now)


def unsettled_jobs(conn: Connection, touched: Iterable[tuple[int, int]]) -> list[int]:
    """Of the (job, layer) pairs whose tasks just ended, the jobs to derive again: the layer is done
    (dependents may start) or the job has nothing queued or running (it may be over).

    Run after the reports' commit, in statements that start after it: of two reports ending a job's last tasks
    together, the one that commits last sees both ended here, so no job is ever left running."""
    return sorted({job_id for job_id, _ in unsettled_layers(conn, touched)})


def unsettled_layers(conn: Connection, touched: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (job, layer) pairs of `unsettled_jobs` whose job must be derived again (one statement for
    all of them on PostgreSQL): a caller that checks many reports' pairs at once can tell each report
    whether its own job needs it."""
    return {(job_id, layer_id) for job_id, layer_id, layer_open, job_busy in dialects.layers_settled(conn, sorted(set(touched)))
            if not (layer_open and job_busy)}


def refresh_jobs(conn: Connection, job_ids: Iterable[int], now: datetime) -> Changes:
    changes = Changes()
    for job_id in sorted(set(job_ids)):
        changes.merge(refresh_job(conn, job_id, now))
    return changes


def stuck_jobs(conn: Connection) -> list[int]:
    """Running jobs with nothing queued or running: left so by a crash between a report's commit and
    the check after it (see `unsettled_jobs`); the server's housekeeping derives them again."""
    return [r.id for r in conn.execute(qj.STUCK_JOBS)]


# ---------------------------------------------------------------------------------------------
# Reports from agents


# Losses after which a task fails instead of going back to ready (the server's `task_max_losses`).
MAX_LOSSES = 3


def lost_again(lost_before: int, max_losses: int) -> bool:
    """Whether one more loss fails the task: a task whose node goes away while running it again and
    again (it crashes or hangs its node) must not take the farm down one node after another."""
    return lost_before + 1 >= max_losses


def _lost_note(reason: str | None, lost: int) -> str:
    return f"{reason or 'lost'}; lost {lost} times (its node went away while running it): the task failed"


# How an agent may say an attempt ended (anything else counts as failed).
_REPORTED_STATES = frozenset({AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.KILLED, AttemptState.LOST})


def finish_attempts(conn: Connection, node_id: int, reports: list[dict[str, Any]], now: datetime, *,
                    settle_now: bool = True, max_losses: int = MAX_LOSSES,
                    limits: FailureLimits = DEFAULT_FAILURE_LIMITS) -> tuple[list[dict[str, Any]], Changes]:
    """Apply a batch of finish reports from one node; idempotent per attempt.

    Returns one `{"attempt_id", "accepted", "next_offset"}` per report (plus `reason` for a report
    the node should drop: not one of its attempts) and what changed. Job states and dependencies are
    re-derived once per touched layer, not once per report: here (`settle_now`), or by the caller
    after the commit (`Changes.settle`, `unsettled_jobs`), which keeps the check and its job row lock
    out of a shared write batch.
    """
    ((results, changes),) = finish_reports(conn, [(node_id, reports)], now, max_losses=max_losses, limits=limits)
    if settle_now:
        settle, changes.settle = changes.settle, set()
        for job_id, layer_id in sorted(settle):
            changes.merge(refresh_job_after_finish(conn, job_id, layer_id, now))
    return results, changes


def finish_reports(conn: Connection, batches: list[tuple[int, list[dict[str, Any]]]], now: datetime, *,
                   max_losses: int = MAX_LOSSES,
                   limits: FailureLimits = DEFAULT_FAILURE_LIMITS) -> list[tuple[list[dict[str, Any]], Changes]]:
    """Several nodes' report batches at once (one write batch of the server): each gets its results and
    what it changed, with `Changes.settle` naming the (job, layer) pairs to check after the commit.

    A handful of statements whatever the number of reports: one read of every attempt named, the
    common outcomes (attempt ended, task succeeded) written together at the end. An attempt reported
    twice is applied once; the repeat is answered alike and changes nothing. A task lost for the
    `max_losses`-th time fails (see `lost_again`); a failed attempt counts against its node and its job
    (`failures.attempt_ended`, with the server's `limits`)."""
    ids = sorted({int(report["attempt_id"]) for _, reports in batches for report in reports})
    rows = {row.id: row for row in conn.execute(dialects.pick(conn, qr.ATTEMPTS_WITH_TASKS),
                                                {"attempt_ids": ids})} if ids else {}
    pending = _PendingWrites()
    done: dict[tuple[int, int], dict[str, Any]] = {}
    out = []
    for node_id, reports in batches:
        changes = Changes()
        results = []
        for report in reports:
            attempt_id = int(report["attempt_id"])
            if (node_id, attempt_id) in done:  # the same report twice: answered alike, applied once
                results.append(done[node_id, attempt_id])
                continue
            result, touched_layer = _finish_one(conn, node_id, report, rows.get(attempt_id), now, changes, pending,
                                                max_losses, limits)
            done[node_id, attempt_id] = result
            results.append(result)
            if touched_layer:
                changes.settle.add(touched_layer)
        out.append((results, changes))
    dialects.write_outcomes(conn, pending.ended, pending.succeeded)
    late_done = []  # after the batch's own successes: a re-run that succeeded in this batch wins (rule 1)
    for row, facts, report, changes in pending.late:
        if late_reports.apply(conn, row, facts, AttemptState.SUCCEEDED, changes, now):
            late_done.append(row.task_id)
            pending.memory.succeeded(conn, row, report.get("peak_rss_mb"))
    pending.memory.write(conn)
    usage.move(conn, pending.released, -1)
    if out:  # tasks waiting frame by frame on those that just ended, looked up by their targets
        ended = [p["b_task_id"] for p in pending.succeeded] + [row.task_id for row, _ in pending.failed] + late_done
        out[0][1].ready += dependencies.release_ended(conn, ended)
    # Job rows last, in job order: a dispatcher locks usage counters before the job rows it marks
    # running, so a finisher taking them in the same order never deadlocks with it on PostgreSQL.
    for row, state in sorted(pending.failed, key=lambda item: (item[0].job_id, item[0].node_id)):
        failures.attempt_ended(conn, row, state, now, limits)
    if out:  # the last scout of an `auto` layer succeeded: its held tasks go (in job order, as above)
        for job_id in scouts.release_succeeded(conn, [p["b_task_id"] for p in pending.succeeded] + late_done):
            out[0][1].merge(refresh_job(conn, job_id, now))
    return out


def fail_attempt(conn: Connection, node_id: int, attempt_id: int, reason: str, now: datetime) -> Changes:
    """The server itself ends a live attempt as failed (it could not even build the command), as if
    the agent had reported so: the try counts, the task is retried or fails, its job is derived again."""
    _, changes = finish_attempts(conn, node_id, [{"attempt_id": attempt_id, "status": AttemptState.FAILED,
                                                  "exit_code": None, "reason": reason, "log_size": 0}], now)
    return changes


@dataclass
class _PendingWrites:
    """The common outcomes of a batch of reports, written together at the end (`dialects.write_outcomes`)."""

    ended: list[dict[str, Any]] = field(default_factory=list)
    succeeded: list[dict[str, Any]] = field(default_factory=list)
    released: list[Any] = field(default_factory=list)   # bookings of the live attempts that ended
    failed: list[tuple[Any, AttemptState]] = field(default_factory=list)  # for the blocklists and failure limits
    memory: MemoryHistory = field(default_factory=MemoryHistory)  # reservations raised after peaks and OOMs
    late: list[tuple[Any, dict[str, Any], dict[str, Any], Changes]] = field(default_factory=list)  # lost, then succeeded


def _finish_one(conn: Connection, node_id: int, report: dict[str, Any], row: Any, now: datetime, changes: Changes,
                pending: _PendingWrites, max_losses: int,
                limits: FailureLimits) -> tuple[dict[str, Any], tuple[int, int] | None]:
    attempt_id = int(report["attempt_id"])
    result: dict[str, Any] = {"attempt_id": attempt_id, "accepted": True, "next_offset": None}
    if row is None or row.node_id != node_id:  # nothing to record: the agent drops the report
        return {**result, "accepted": False, "reason": f"no attempt {attempt_id} on this node"}, None
    if row.log_size < int(report.get("log_size") or 0):
        return {**result, "accepted": False, "next_offset": row.log_size}, None
    status = report.get("status")
    facts = {"b_exit_code": report.get("exit_code"), "b_cpu_s": report.get("cpu_s"),
             "b_peak_rss_mb": report.get("peak_rss_mb"), "b_now": now, "b_id": attempt_id,
             "b_out_of_memory": bool(report.get("out_of_memory")),
             "b_started_at": run_start(row.started_at, report.get("waited_s"), now)}
    if row.state not in LIVE_ATTEMPT_STATES:
        if row.state == AttemptState.LOST and row.exit_code is None and status == AttemptState.SUCCEEDED:
            pending.late.append((row, facts, report, changes))  # kept or not: `late_reports`, after the batch
            return result, None
        if row.ended_at is None or row.exit_code is None:  # a lost attempt that finished after all
            note = f"{row.reason or 'lost'}; the agent later reported it {status}"
            pending.ended.append({**facts, "b_state": row.state, "b_reason": note})
        return result, None
    final_state = AttemptState(status) if status in _REPORTED_STATES else AttemptState.FAILED
    told = row.state == AttemptState.KILLING and final_state == AttemptState.KILLED and row.reason
    ended = {**facts, "b_state": final_state, "b_reason": row.reason if told else report.get("reason")}
    pending.ended.append(ended)
    pending.released.append(row.booked)
    changes.nodes.add(node_id)
    if row.task_attempt_id != attempt_id or row.task_state != TaskState.RUNNING:
        return result, None  # the task was killed, skipped or handed elsewhere meanwhile
    task = {"b_task_id": row.task_id, "b_attempt_id": attempt_id}
    if final_state == AttemptState.SUCCEEDED:
        pending.succeeded.append({**task, "b_now": now, "b_started_at": ended["b_started_at"]})
        pending.memory.succeeded(conn, row, report.get("peak_rss_mb"))
    elif final_state == AttemptState.LOST and lost_again(row.lost, max_losses):
        conn.execute(qr.TASK_LOST_FOR_GOOD, {**task, "b_now": now})
        ended["b_reason"] = _lost_note(report.get("reason"), row.lost + 1)
    elif final_state == AttemptState.LOST:
        again = layer_pause.freed_in_job(conn, row.job_id, row.layer_id)  # a paused job or layer starts nothing
        conn.execute(qr.TASK_REQUEUED, {**task, "b_state": again})
        changes.ready += int(again == TaskState.READY)
    else:
        tries = row.tries + 1
        retry = tries <= row.retries
        again = layer_pause.freed_in_job(conn, row.job_id, row.layer_id) if retry else TaskState.FAILED
        conn.execute(qr.TASK_TRIED, {**task, "b_state": again, "b_tries": tries,
                                     "b_ended_at": None if retry else now})
        changes.ready += int(again == TaskState.READY)
        pending.failed.append((row, final_state))
        if report.get("out_of_memory"):  # the retry reserves more (`server/memory.py`)
            memory = pending.memory.out_of_memory(conn, row, report.get("peak_rss_mb"))
            if retry:
                ended["b_reason"] = f"{report.get('reason') or 'out of memory'}; retrying with {memory} MB"
    return result, (row.job_id, row.layer_id)


def append_log(conn: Connection, node_id: int, attempt_id: int, offset: int, data: str,
               max_bytes: int = 50 * 1024 * 1024, now: datetime | None = None) -> tuple[int, bool]:
    """Append log bytes at `offset`, arrived `now`; returns (server's log size, gap?). Repeated chunks are
    ignored. Every byte is acknowledged; what is stored stays under `max_bytes` (`server/log_cap.py`)."""
    attempt = conn.execute(qr.ATTEMPT_LOG, {"attempt_id": attempt_id}).first()
    if attempt is None or attempt.node_id != node_id:
        raise NotFound(f"no attempt {attempt_id} on this node")
    size = attempt.log_size
    if offset > size:
        return size, True
    raw = log_text.wire_bytes(data)  # a lone surrogate stands for a byte that is not UTF-8
    skip = size - offset
    if skip >= len(raw):
        return size, False
    log_cap.store(conn, attempt_id, size, raw[skip:], max_bytes, now or utcnow())
    new_size = size + len(raw) - skip
    conn.execute(qr.SET_LOG_SIZE, {"attempt_id": attempt_id, "size": new_size})
    return new_size, False


def lose_attempts(conn: Connection, attempt_ids: list[int], reason: str, now: datetime, *,
                  max_losses: int = MAX_LOSSES) -> Changes:
    """The node running these is gone (or forgot them): requeue their tasks without counting a try, or
    fail those lost for the `max_losses`-th time (see `lost_again`)."""
    changes = Changes()
    touched_jobs: set[int] = set()
    live = conn.execute(qr.LIVE_ATTEMPTS, {"attempt_ids": attempt_ids}).all()
    usage.move(conn, [attempt.booked for attempt in live], -1)
    for attempt in live:
        task = {"b_task_id": attempt.task_id, "b_attempt_id": attempt.id}
        if lost_again(attempt.lost, max_losses):
            failed = conn.execute(qr.TASK_LOST_FOR_GOOD, {**task, "b_now": now}).rowcount
            note = _lost_note(reason, attempt.lost + 1) if failed else reason
            conn.execute(qr.LOSE_ATTEMPT, {"attempt_id": attempt.id, "b_reason": note, "now": now})
        else:
            conn.execute(qr.LOSE_ATTEMPT, {"attempt_id": attempt.id, "b_reason": reason, "now": now})
            again = layer_pause.freed_in_job(conn, attempt.job_id, attempt.layer_id)
            moved = conn.execute(qr.TASK_REQUEUED, {**task, "b_state": again}).rowcount
            changes.ready += moved if again == TaskState.READY else 0
        changes.nodes.add(attempt.node_id)
        touched_jobs.add(attempt.job_id)
    return changes.merge(refresh_jobs(conn, touched_jobs, now))


# ---------------------------------------------------------------------------------------------
# Steering by people


def _job(conn: Connection, job_id: int) -> Any:
    job = conn.execute(qs.JOB, {"job_id": job_id}).first()
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    return job


def _task(conn: Connection, task_id: int) -> Any:
    task = conn.execute(qs.TASK_JOB_AND_STATE, {"task_id": task_id}).first()
    if task is None:
        raise NotFound(f"no task with id {task_id}")
    return task


def _kill_running(conn: Connection, running: Sequence[Any], why: str, by: str | None) -> Changes:
    """Ask agents to stop the live attempts of these running tasks (rows of `attempt_id`, `node_id`); the
    attempts end saying why and who (`job killed by ana`), not with the agent's "killed by server"."""
    ids = [r.attempt_id for r in running if r.attempt_id]
    if ids:
        conn.execute(qs.MARK_KILLING, {"attempt_ids": ids, "b_reason": f"{why} by {by}" if by else why})
    return Changes(nodes={r.node_id for r in running if r.node_id})


job_row, kill_running = _job, _kill_running  # for `server/layer_steering.py`


def _refuse_job(conn: Connection, action: Action, job: Any) -> None:
    """409 when `action` would do nothing to the job (**the** rule: `model/steering_rule.job_refusal`)."""
    refusal = job_refusal(action, job.id, JobState(job.state), paused=job.paused, counts=task_counts(conn, job.id),
                          archived=job.archived_at is not None)
    if refusal:
        raise Conflict(refusal)


def _refuse_task(action: Action, task_id: int, state: str) -> None:
    refusal = task_refusal(action, task_id, TaskState(state))
    if refusal:
        raise Conflict(refusal)


def kill_job(conn: Connection, job_id: int, now: datetime, by: str | None = None) -> Changes:
    _refuse_job(conn, Action.KILL, _job(conn, job_id))
    changes = _kill_running(conn, conn.execute(qs.RUNNING_IN_JOB, {"job_id": job_id}).all(), "job killed", by)
    conn.execute(qs.KILL_JOB_TASKS, {"b_job_id": job_id, "now": now})
    conn.execute(qs.SET_JOB_KILLED, {"job_id": job_id, "b_killed": True})
    return changes.merge(refresh_job(conn, job_id, now))


def pause_job(conn: Connection, job_id: int, now: datetime) -> Changes:
    _refuse_job(conn, Action.PAUSE, _job(conn, job_id))
    conn.execute(qs.SET_JOB_PAUSED, {"job_id": job_id, "b_paused": True})
    conn.execute(qs.MOVE_JOB_TASKS, {"b_job_id": job_id, "from_state": TaskState.READY, "to_state": TaskState.PAUSED})
    return refresh_job(conn, job_id, now)


def resume_job(conn: Connection, job_id: int, now: datetime) -> Changes:
    job = _job(conn, job_id)
    _refuse_job(conn, Action.RESUME, job)
    n = failures.restart(conn, job)
    conn.execute(qs.SET_JOB_PAUSED, {"job_id": job_id, "b_paused": False})
    n += conn.execute(qs.RESUME_JOB_TASKS, {"b_job_id": job_id}).rowcount  # layers paused by themselves stay
    return Changes(ready=n).merge(refresh_job(conn, job_id, now))


def retry_tasks(conn: Connection, job_id: int, task_ids: list[int] | None, now: datetime) -> Changes:
    """Failed and killed tasks (or the given ones) get a fresh set of tries; the job's failures count from
    zero again, and a job its failure limit stopped runs again (`failures.restart`)."""
    job = _job(conn, job_id)
    if task_ids:
        rows = conn.execute(qs.JOB_TASKS_BY_ID, {"job_id": job_id, "task_ids": task_ids}).all()
        missing = set(task_ids) - {r.id for r in rows}
        if missing:
            raise NotFound(f"job {job_id} has no task {sorted(missing)[0]}")
        for row in rows:
            _refuse_task(Action.RETRY, row.id, row.state)
    else:
        _refuse_job(conn, Action.RETRY, job)
    restarted = failures.restart(conn, job)
    if job.stop_reason is not None:
        job = _job(conn, job_id)
    target = TaskState.PAUSED if job.paused else TaskState.WAITING  # waiting: the dependency check decides
    if task_ids:
        n = conn.execute(qs.RETRY_JOB_TASKS, {"b_job_id": job_id, "task_ids": task_ids, "b_state": target}).rowcount
    else:
        n = conn.execute(qs.RETRY_FAILED_TASKS, {"b_job_id": job_id, "b_state": target}).rowcount
    if n == 0:
        raise Conflict(f"job {job_id} has no failed or killed tasks to retry")
    conn.execute(qs.REOPEN_JOB, {"job_id": job_id})
    return Changes(ready=restarted).merge(refresh_job(conn, job_id, now))


def skip_task(conn: Connection, task_id: int, now: datetime, by: str | None = None) -> tuple[int, Changes]:
    task = _task(conn, task_id)
    _refuse_task(Action.SKIP, task_id, task.state)
    changes = _kill_running(conn, conn.execute(qs.RUNNING_TASK, {"task_id": task_id}).all(), "task skipped", by)
    conn.execute(qs.END_TASK, {"task_id": task_id, "b_state": TaskState.SKIPPED, "now": now})
    return task.job_id, changes.merge(refresh_job(conn, task.job_id, now))


def kill_task(conn: Connection, task_id: int, now: datetime, by: str | None = None) -> tuple[int, Changes]:
    task = _task(conn, task_id)
    _refuse_task(Action.KILL, task_id, task.state)
    changes = _kill_running(conn, conn.execute(qs.RUNNING_TASK, {"task_id": task_id}).all(), "task killed", by)
    conn.execute(qs.END_TASK, {"task_id": task_id, "b_state": TaskState.KILLED, "now": now})
    return task.job_id, changes.merge(refresh_job(conn, task.job_id, now))


def retry_task(conn: Connection, task_id: int, now: datetime) -> tuple[int, Changes]:
    task = _task(conn, task_id)
    return task.job_id, retry_tasks(conn, task.job_id, [task_id], now)


def release_held(conn: Connection, job_id: int, layer: str | None, who: str, now: datetime,
                 ) -> tuple[list[str], Changes]:
    """A person lets the tasks held behind scout frames go (one layer's, or every held layer's), whether
    or not the scouts succeeded (`server/scouts.py`); what is met then becomes ready."""
    _job(conn, job_id)
    if layer is not None and conn.execute(qs.LAYER_OF_JOB, {"job_id": job_id, "name": layer}).first() is None:
        raise NotFound(f"job {job_id} has no layer named {layer!r}")
    released = scouts.release_by_hand(conn, job_id, layer, who)
    if not released:
        raise Conflict(f"{f'layer {layer} of job {job_id}' if layer else f'job {job_id}'} holds no tasks to release")
    return released, refresh_job(conn, job_id, now)


def change_scout(conn: Connection, job_id: int, layer: str, scout: str, release: str, who: str,
                 now: datetime) -> Changes:
    """A layer's scout frames picked again before any of its tasks started (`scouts.repick`)."""
    _job(conn, job_id)
    scouts.repick(conn, job_id, layer, scout, release, who)
    return refresh_job(conn, job_id, now)


def set_priority(conn: Connection, job_id: int, priority: int) -> None:
    _job(conn, job_id)
    conn.execute(qs.SET_JOB_PRIORITY, {"job_id": job_id, "b_priority": priority})
    conn.execute(qs.SET_TASKS_PRIORITY, {"b_job_id": job_id, "b_priority": priority})
