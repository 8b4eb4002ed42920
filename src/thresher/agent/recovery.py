"""After a crash or `kill -9` of the agent: end the task trees it left running and report them lost.

The spool keeps a record (pid, process group, create time, cgroup) of every attempt while it runs, so
an agent that starts again finds what its previous run left behind: a task's cgroup is killed whole;
otherwise create times guard against pid reuse, and only processes that are still the ones we started
are signalled. The attempts are reported `lost`, which the server requeues without counting a try,
except those whose child had already exited (the record holds its exit status, written the moment it
was reaped): they are judged as the runner would have (the agent's own reason, error lines in the
log on disk, the exit status, the outputs), so a finished render is not run again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import psutil

from thresher.agent.cgroup import TaskCgroup
from thresher.agent.output import last_output_line
from thresher.agent.output_checks import ErrorLineWatch, check_outputs
from thresher.agent.process_tree import pgid_of
from thresher.agent.runner import exit_reason
from thresher.agent.spool import Spool, file_key
from thresher.agent.wire import MAX_REASON, TaskResult, lost_report, utc_now_iso
from thresher.model.states import AttemptState

log = logging.getLogger("thresher.agent")

_KILL_WAIT_S = 2.0


def kill_leftover(pid: int, pgid: int, create_time: float, *, grace_s: float) -> int:
    """End what a previous agent run left behind: the group `pgid` and the process `pid`, only if they
    are still the ones we started (create times guard against reuse); SIGTERM, `grace_s`, SIGKILL.
    Returns how many processes were signalled."""
    victims: list[psutil.Process] = []
    for p in psutil.process_iter(["pid", "create_time"]):
        try:
            ct = p.info["create_time"] or 0.0
            if p.pid == pid and create_time and abs(ct - create_time) <= 0.01:
                victims.append(p)
            elif pgid_of(p.pid) == pgid and ct >= create_time - 0.01 and p.pid != os.getpid():
                victims.append(p)
        except psutil.Error:
            continue
    for p in victims:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(victims, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=_KILL_WAIT_S)
    return len(victims)


def recover_leftovers(spool: Spool, grace_s: float, mtime_slack_s: float = 2.0) -> None:
    """Attempts a previous run left running: end their trees and report them (lost, unless the child
    had exited: then its outcome)."""
    for record in spool.running_records():
        attempt_id = record["attempt_id"]
        pid = record.get("pid")
        if record.get("cgroup"):
            cgroup = TaskCgroup(Path(record["cgroup"]))
            if cgroup.pids():
                log.warning("attempt %s: ending the leftover processes of cgroup %s", attempt_id, cgroup.path)
            cgroup.remove()
        if pid:
            n = kill_leftover(int(pid), int(record.get("pgid") or pid), float(record.get("create_time") or 0.0),
                              grace_s=grace_s)
            if n:
                log.warning("attempt %s: ended %d leftover processes from a previous agent run", attempt_id, n)
        if not (spool.spool_dir / f"{file_key(attempt_id)}.json").exists():
            try:
                log_size = spool.log_path(attempt_id).stat().st_size
            except FileNotFoundError:
                log_size = 0
            exited = record.get("exit")
            if isinstance(exited, dict):
                report = judge_exited(record, exited, spool.log_path(attempt_id), log_size, mtime_slack_s)
                log.warning("attempt %s had ended when the agent stopped: reporting it %s", attempt_id,
                            report["status"])
            else:
                report = lost_report(attempt_id, "agent restarted while the attempt was running", log_size)
                log.warning("attempt %s was running when the agent stopped: reporting it lost", attempt_id)
            spool.put_report(report)
        spool.clear_running(attempt_id)


def judge_exited(record: dict[str, Any], exited: dict[str, Any], log_path: Path, log_size: int,
                 mtime_slack_s: float) -> dict[str, Any]:
    """The report of an attempt whose child exited before the agent died: the same order as the
    runner's verdict (its own reason, an error line, the exit status, the outputs)."""
    checks = record.get("checks") or {}
    exit_code = exited.get("exit_code")
    status, reason = AttemptState.SUCCEEDED, None
    outcome = exited.get("outcome")
    errors = ErrorLineWatch(list(checks.get("error_patterns") or []))
    if outcome:
        status, reason = AttemptState(outcome[0]), str(outcome[1])
    else:
        if errors:
            try:
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        errors.feed(line)
                        if errors.first is not None:
                            break
            except OSError:
                pass
        if errors.first is not None:
            status, reason = AttemptState.FAILED, f"error line: {errors.first}"
        elif exit_code != 0:
            status, reason = AttemptState.FAILED, exit_reason(exit_code, last_output_line(log_path))
        else:
            reason = check_outputs(list(checks.get("outputs") or []), checks.get("cwd"),
                                   exited.get("started_wall"), mtime_slack_s)
            status = AttemptState.FAILED if reason else AttemptState.SUCCEEDED
    return TaskResult(attempt_id=record["attempt_id"], status=status, exit_code=exit_code,
                      cpu_s=float(exited.get("cpu_s") or 0.0), peak_rss_mb=float(exited.get("peak_rss_mb") or 0.0),
                      reason=reason[:MAX_REASON] if reason else None, log_size=log_size,
                      ended_at=str(exited.get("ended_at") or utc_now_iso())).to_report()
