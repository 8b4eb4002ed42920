"""Enrolment: how an agent becomes a node of the farm and stays one.

The first start trades the enrolment token for a node credential, kept in the state folder (0600);
later starts register with it (refreshing the node's facts). An agent whose node was deleted, or
whose server lost its database, enrols again with the given token instead of failing forever. A
state folder copied with a disk image (another machine's id in it) enrols as a new node, so two
machines never share one identity.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from thresher.agent.connectivity import Connectivity, is_outage, retry_backoff
from thresher.agent.fatal import AgentFatal
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import write_json_atomic
from thresher.client.http import ApiError, HttpClient, TlsFailed
from thresher.wire.agent import Registered

log = logging.getLogger("thresher.agent")

CREDENTIAL_FILE = "credential.json"


def machine_id() -> str:
    """An id of the OS install. A state folder carrying another machine's id was copied with a disk
    image, and must not make two machines share one node identity."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(path).read_text().strip()
            if value:
                return value
        except OSError:
            continue
    return ""


@dataclass(frozen=True)
class Registration:
    """What the server said when it accepted this node."""

    node_id: int
    name: str
    token: str
    node_timeout_s: float | None  # the server's silence limit before it declares a node down
    poll_heartbeat: bool = False  # an idle poll may carry the heartbeat (`model/heartbeat_rule.py`)


def _same_host(saved: str, now: str) -> bool:
    """Whether the stored credential may be offered to this server: the one it was made on, if on another
    port (a local farm's server restarted on a free port). A node credential is never sent to another host;
    there the enrolment token is used (and a known node's name needs its own credential: the server says so)."""
    a, b = urlsplit(saved.rstrip("/")), urlsplit(now.rstrip("/"))
    return bool(a.hostname) and (a.scheme, a.hostname, a.path) == (b.scheme, b.hostname, b.path)


class Enrolment:
    """Registers this node with the server and keeps its credential in the state folder."""

    def __init__(self, settings: AgentSettings, state_dir: Path, conn: Connectivity) -> None:
        if not settings.server or not settings.token:
            raise ValueError("the agent needs a server URL and a token")
        self.server = settings.server
        self.given_token = settings.token
        self.settings = settings
        self.state_dir = state_dir
        self.conn = conn

    @property
    def credential_path(self) -> Path:
        return self.state_dir / CREDENTIAL_FILE

    def _load_credential(self) -> dict[str, Any] | None:
        path = self.credential_path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable credential %s (%s): enrolling again", path, exc)
            return None
        if not isinstance(data, dict) or not data.get("token"):
            return None
        mid = machine_id()
        if data.get("machine_id") and mid and data["machine_id"] != mid:
            log.warning("state folder %s comes from another machine (cloned image?): enrolling as a new node",
                        self.state_dir)
            return None
        return data

    def register(self, facts: dict[str, Any], name: str, stop: threading.Event, *,
                 use_stored: bool = True) -> Registration | None:
        """Register (enrol or refresh facts) until the server answers; None if stopped first.

        The stored node credential is tried first, then the given token."""
        cred = self._load_credential()
        instance_id = (cred or {}).get("instance_id") or uuid.uuid4().hex
        candidates: list[tuple[str, str]] = []
        if use_stored and cred and _same_host(cred.get("server", ""), self.server):
            candidates.append(("stored node credential", cred["token"]))
        if not candidates or candidates[0][1] != self.given_token:
            candidates.append(("given token", self.given_token))
        body = dict(facts, instance_id=instance_id)
        backoff = retry_backoff(self.settings)
        while not stop.is_set():
            refused: list[str] = []
            for what, token in candidates:
                try:
                    client = HttpClient(self.server, token, timeout=self.settings.http_timeout_s,
                                        ca_file=self.settings.ca_file)
                except TlsFailed as exc:
                    raise AgentFatal(str(exc)) from None
                try:
                    answer = client.post("/agent/register", body)
                except TlsFailed as exc:  # a certificate the agent cannot trust: retrying will not change it
                    raise AgentFatal(str(exc)) from None
                except ApiError as exc:
                    if is_outage(exc):
                        self.conn.failed("registering", exc)
                        break
                    if exc.status in (401, 403):
                        refused.append(f"{what}: {exc.detail}")
                        continue
                    if exc.status == 409:
                        raise AgentFatal(f"registration refused: {exc.detail}") from None  # it says what to do
                    raise AgentFatal(f"registration refused: {exc}") from None
                except Exception as exc:
                    if is_outage(exc):
                        self.conn.failed("registering", exc)
                        break
                    raise
                finally:
                    client.close()
                self.conn.ok()
                return self._accepted(answer, token, instance_id, name)
            else:
                raise AgentFatal("registration refused: " + "; ".join(refused))
            stop.wait(backoff.next_delay())
        return None

    def _accepted(self, answer: Any, used_token: str, instance_id: str, name: str) -> Registration:
        try:
            registered = Registered.model_validate(answer)
        except ValidationError as exc:
            raise AgentFatal(f"the server's answer to the registration cannot be read ({exc.error_count()} "
                             f"problem(s), e.g. {exc.errors(include_url=False)[0].get('msg')}): is {self.server} "
                             "a Thresher server of this version?") from None
        timeout = registered.node_timeout_s
        registration = Registration(
            node_id=registered.node_id, name=registered.name or name, token=registered.token or used_token,
            node_timeout_s=timeout if timeout > 0 else None, poll_heartbeat=registered.poll_heartbeat,
        )
        write_json_atomic(self.credential_path, {
            "server": self.server, "node_id": registration.node_id, "name": registration.name,
            "token": registration.token, "instance_id": instance_id, "machine_id": machine_id(),
        }, mode=0o600, durable=True)
        os.chmod(self.credential_path, 0o600)
        return registration
