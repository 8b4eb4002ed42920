"""Where an agent keeps its memory (credential, spool, task logs), and the rule of one agent per folder.

One folder per agent name, so several agents can share a box; two agents on one folder would kill each
other's tasks when they restart, so the folder is locked while an agent runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from thresher.agent.fatal import AgentFatal
from thresher.agent.spool import file_key


def default_state_dir(name: str) -> Path:
    """`$THRESHER_HOME/agents/<name>` when THRESHER_HOME is set (tests, portable installs), else the
    platform's per-user state folder."""
    safe = file_key(name)
    home = os.environ.get("THRESHER_HOME")
    if home:
        return Path(home) / "agents" / safe
    return Path(platformdirs.user_state_dir("thresher")) / f"agent-{safe}"


class StateDirLock:
    """An advisory lock on a state folder, held from `acquire()` to `release()`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AgentFatal when another agent holds it."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            return
        fd = os.open(self.state_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AgentFatal(f"another agent is running with state folder {self.state_dir}") from None
        os.set_inheritable(fd, False)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
