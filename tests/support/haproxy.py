"""A real haproxy (Debian's package) in front of several Thresher servers, on loopback, in a temp folder.

It balances round robin, checks every server's `/api/v1/health` twice a second and sends a request
that found its server dead to another (`option redispatch`, `retries`): what a studio's load balancer
does in front of several server processes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Sequence

import httpx

CONFIG = """global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
frontend thresher
    bind 127.0.0.1:{port}
    default_backend servers
backend servers
    balance roundrobin
    option httpchk GET /api/v1/health
    default-server inter 500ms fall 1 rise 2
{servers}
"""


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (str(Path("/usr/sbin/haproxy")) if Path("/usr/sbin/haproxy").exists() else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HAProxy:
    """`HAProxy(folder, ["127.0.0.1:8001", ...]).start()`; `url` is the front; `stop()` ends it."""

    def __init__(self, folder: Path, backends: Sequence[str]) -> None:
        self.folder = folder
        self.backends = list(backends)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "haproxy.log"

    def start(self, timeout: float = 20.0) -> "HAProxy":
        binary = haproxy_binary()
        if binary is None:
            raise RuntimeError("haproxy is not installed (scripts/setup.sh installs it)")
        self.folder.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server s{i} {address} check" for i, address in enumerate(self.backends))
        config = self.folder / "haproxy.cfg"
        config.write_text(CONFIG.format(port=self.port, servers=servers))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([binary, "-db", "-f", str(config)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not answer on {self.url}: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
