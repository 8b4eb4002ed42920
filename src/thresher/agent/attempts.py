"""The attempts this agent runs now: start one per assignment, spool its result, kill on request.

Each attempt gets a runner thread of its own, which forks the task and lives exactly as long as it
(PDEATHSIG ties the child to that thread), in a cgroup of its own where the node allows it
(`agent/cgroup.py`). The spool records the attempt while it runs, so a crashed agent finds it again
(recovery.py), and keeps its finish report until the server accepted it. The record also gets the
child's exit status the moment it is reaped: an agent killed between that and the spooled report
reports the real outcome when it starts again instead of running the task once more.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Mapping

from thresher.agent import timeline
from thresher.agent.cgroup import CgroupHost
from thresher.agent.cpus import CpuAllocator, usable_cpus
from thresher.agent.reporter import Reporter
from thresher.agent.room import Room, Ticket
from thresher.agent.runner import TaskRunner
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import Spool, file_key
from thresher.agent.wire import lost_report, utc_now_iso
from thresher.model.states import AttemptState
from thresher.wire.agent import Assignment

log = logging.getLogger("thresher.agent")


class Attempts:
    """The running attempts of one agent; safe to call from the work, heartbeat and signal threads."""

    def __init__(self, settings: AgentSettings, spool: Spool, reporter: Reporter, *, hide_gpus: bool,
                 room: Room | None = None) -> None:
        self.settings = settings
        self.room = room  # the node's cores and memory, where tasks may wait for them (`tasks_ahead`)
        self._in_room: dict[str, Ticket] = {}  # the room each attempt holds
        self.spool = spool
        self.reporter = reporter
        self.hide_gpus = hide_gpus
        self._lock = threading.Lock()
        self._stopping = False
        self._runners: dict[str, TaskRunner] = {}
        self._threads: dict[str, threading.Thread] = {}
        self.cpus = CpuAllocator(usable_cpus()) if settings.pin_cpus else None
        self.cgroups: CgroupHost | None = None
        if settings.task_cgroups:
            self.cgroups, why = CgroupHost.detect(memory_limit=settings.task_memory_max)
            log.info("task containment: %s", why if self.cgroups else f"no cgroups ({why}); process tracking")
            if self.cgroups is not None and (n := self.cgroups.sweep()):
                log.warning("removed %d task cgroup(s) of agents that are gone", n)

    def start(self, assignment: Assignment) -> None:
        """Start the attempt of one assignment from the server (once, however often it comes)."""
        attempt_id = assignment.attempt_id
        key = file_key(attempt_id)
        reporter = self.reporter
        with self._lock:
            if key in self._runners:
                return  # the same assignment twice (a retried call): it already runs
            if self._stopping:
                self.spool.put_report(lost_report(attempt_id, "agent shutdown"))
                return
            started_at = utc_now_iso()
            # What recovery needs to judge an attempt whose child exited just before the agent died.
            record: dict[str, Any] = {"checks": {"outputs": assignment.outputs, "cwd": assignment.cwd,
                                                 "error_patterns": assignment.error_patterns}}
            self.spool.mark_running(attempt_id, pid=0, pgid=0, create_time=0.0, started_at=started_at, **record)

            def on_started(pid: int, create_time: float, cgroup: str | None) -> None:
                record.update(pid=pid, pgid=pid, create_time=create_time, cgroup=cgroup)
                self.spool.mark_running(attempt_id, started_at=started_at, **record)

            def on_exited(exit_record: dict[str, Any]) -> None:
                if self.cpus is None:  # its room goes to the next waiting task now, not after the verdict
                    self._leave_room(key)
                record["exit"] = exit_record
                self.spool.mark_running(attempt_id, started_at=started_at, **record)

            # A task that may wait for room is pinned when it gets it (`_run`).
            cpus = self.cpus.take(attempt_id, assignment.cores) if self.cpus and self.room is None else None
            runner = TaskRunner(
                assignment, self.spool.log_path(attempt_id), self.settings, hide_gpus=self.hide_gpus,
                on_started=on_started, on_output=lambda n: reporter.note_output(attempt_id, n), cpus=cpus,
                cgroups=self.cgroups, on_exited=on_exited,
            )
            reporter.track(attempt_id, self.spool.log_path(attempt_id))
            self._runners[key] = runner
            thread = threading.Thread(target=self._run, args=(runner,), name=f"attempt-{key}", daemon=True)
            self._threads[key] = thread
        log.info("attempt %s started: job %s %r layer %s frames %s%s", attempt_id, assignment.job_id,
                 assignment.job_name, assignment.layer, assignment.frames or "-",
                 (f" gpus {assignment.gpus}" if assignment.gpus else "") + (f" cpus {cpus}" if cpus else ""))
        thread.start()

    def _run(self, runner: TaskRunner) -> None:
        """Runs in the attempt's own thread (the forking thread must outlive the child)."""
        attempt_id = runner.assignment.attempt_id
        key = file_key(attempt_id)
        a = runner.assignment
        try:
            runner.prepare()  # its log, folders and cgroup: made while it waits, not when its turn comes
        except OSError:
            pass  # `run` tries again and reports the attempt failed, saying why
        # Killed while it waited for room: it takes none, and the runner reports it not started.
        ticket = self.room.enter(a.cores, a.memory_mb, lambda: runner.kill_requested) if self.room else None
        if ticket is not None:
            with self._lock:
                self._in_room[key] = ticket
            if self.cpus:
                runner.cpus = self.cpus.take(attempt_id, a.cores)
        try:
            result = runner.run(release=False)
        finally:
            self._leave_room(key, ended=True)  # if its exit did not already: before the report, which frees it on the server
        report = result.to_report()
        while True:
            try:
                self.spool.put_report(report)
                break
            except OSError as exc:  # disk full: keep the report in memory and retry
                log.error("attempt %s: cannot spool the report (%s); retrying", attempt_id, exc)
                time.sleep(self.settings.spool_retry_s)
        timeline.mark("spooled", attempt_id)
        self.spool.clear_running(attempt_id)
        if self.cpus:
            self.cpus.give_back(attempt_id)
        with self._lock:
            self._runners.pop(key, None)
            self._threads.pop(key, None)
        self.reporter.wake(finished=True)
        timeline.mark("woke_reporter", attempt_id)
        runner.release()  # its empty cgroup, removed off the report's way
        log.info("attempt %s %s: exit %s, %.1f s cpu, %.0f MB peak%s", attempt_id, result.status,
                 result.exit_code, result.cpu_s, result.peak_rss_mb,
                 f" ({result.reason})" if result.reason else "")

    def _leave_room(self, key: str, *, ended: bool = False) -> None:
        """The attempt's room is free again: at its exit, or (`ended`) when its runner ends, whichever is
        first (`Room.leave` acts once)."""
        with self._lock:
            ticket = self._in_room.pop(key, None) if ended else self._in_room.get(key)
        if ticket is not None and self.room is not None:
            self.room.leave(ticket)

    def kill(self, attempt_ids: list[Any], reason: str, reasons: Mapping[int, str] | None = None) -> None:
        """The server's kill list: end those of its attempts that still run here, each with the server's
        reason for it when it gave one (`reasons`: "job killed by ana"), else `reason`. Those not started
        yet (waiting for room) are told first: a running one that ends frees room, and a waiting one of
        the same list must not start in it."""
        with self._lock:
            runners = [r for r in (self._runners.get(file_key(a)) for a in attempt_ids) if r is not None]
        for runner in sorted(runners, key=lambda r: r.started.is_set()):
            if not runner.finished.is_set():
                log.info("attempt %s: kill requested by the server", runner.assignment.attempt_id)
                said = (reasons or {}).get(runner.assignment.attempt_id)
                runner.kill(AttemptState.KILLED, said or reason)
        if self.room is not None:
            self.room.wake()  # a killed attempt that waits for room gives up its turn

    def running(self) -> list[TaskRunner]:
        """The runners of the attempts running now (for the memory guard)."""
        with self._lock:
            return list(self._runners.values())

    def stop_out_of_memory(self, attempt_id: Any, reason: str) -> None:
        """The memory guard's verdict: stop this attempt, reported failed and out of memory."""
        with self._lock:
            runner = self._runners.get(file_key(attempt_id))
        if runner is not None and not runner.finished.is_set():
            runner.stop_out_of_memory(reason)

    def stats(self) -> list[dict[str, Any]]:
        """Live figures of every running attempt, for the heartbeat."""
        with self._lock:
            runners = list(self._runners.values())
        return [r.stats() for r in runners]

    def stop_taking(self) -> list[tuple[TaskRunner, threading.Thread]]:
        """Shutdown, first step: take no new attempt (later ones are reported lost at once). Returns
        the attempts running now, with their threads."""
        with self._lock:
            self._stopping = True
            return [(runner, self._threads[key]) for key, runner in self._runners.items() if key in self._threads]

    @staticmethod
    def give_up(running: list[tuple[TaskRunner, threading.Thread]], grace_s: float) -> None:
        """Shutdown, second step: end those attempts (SIGTERM, at most `grace_s`, SIGKILL); each is
        reported lost, and the server runs it again elsewhere."""
        if running:
            log.info("shutting down: ending %d running task(s)", len(running))
        for runner, _ in running:
            runner.kill_grace_s = min(runner.kill_grace_s, grace_s)
            runner.kill(AttemptState.LOST, "agent shutdown")
