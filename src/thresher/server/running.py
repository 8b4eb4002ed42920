"""`server.json` in a data folder: which server serves it (URL, pid), so nothing else takes it over.

A server writes it once it listens and removes it when it stops. `thresher server` and `thresher up`
read it before starting: a data folder already served by a live server is refused (two servers on one
SQLite file and one client config fight each other), while a file left by a server that died is stale.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

SERVER_JSON = "server.json"


@dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int

    def describe(self) -> str:
        return f"{self.url} (server pid {self.pid})"


def write_server_json(data_dir: Path, url: str, db: str) -> None:
    info = data_dir / SERVER_JSON
    tmp = info.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "db": db}))
    tmp.replace(info)


def running_server(data_dir: Path) -> RunningServer | None:
    """The live server that serves `data_dir` (another process than this one), or None.

    Live means its pid runs a Thresher process: a pid reused by something else after a crash is not it."""
    try:
        info = json.loads((data_dir / SERVER_JSON).read_text(encoding="utf-8"))
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return None
    return RunningServer(url, pid) if "thresher" in cmdline else None
