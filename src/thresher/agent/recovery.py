"""After a crash or `kill -9` of the agent: end the task trees it left running and report them lost.

The spool keeps a record (pid, process group, create time) of every attempt while it runs, so an
agent that starts again finds what its previous run left behind. Create times guard against pid
reuse: only processes that are still the ones we started are signalled. The attempts are reported
`lost`, which the server requeues without counting a try.
"""

from __future__ import annotations

import logging
import os

import psutil

from thresher.agent.process_tree import pgid_of
from thresher.agent.spool import Spool, file_key
from thresher.agent.wire import lost_report

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


def recover_leftovers(spool: Spool, grace_s: float) -> None:
    """Attempts a previous run left running: end their trees and report them lost."""
    for record in spool.running_records():
        attempt_id = record["attempt_id"]
        pid = record.get("pid")
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
            spool.put_report(lost_report(attempt_id, "agent restarted while the attempt was running", log_size))
            log.warning("attempt %s was running when the agent stopped: reporting it lost", attempt_id)
        spool.clear_running(attempt_id)
