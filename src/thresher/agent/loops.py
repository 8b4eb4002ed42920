"""The agent's two conversations with the server that never end: asking for work, and heartbeats.

- The work poll long-polls `POST /agent/work` and starts an attempt per assignment. The server answers
  early when something changed, so the poll is re-issued at once: no fixed sleep on the hot path.
- The heartbeat sends load figures, what runs and what waits to be reported, and obeys the answer's
  kill list; it also follows the node's admin state (enabled, draining, disabled) for the log.
  An idle agent's poll carries the heartbeat instead, where the server counts it as one, and the
  separate heartbeat then rests (`model/heartbeat_rule.py`).

Each retries on its own with backoff while the server is away (design rule 6); the third thread, the
reporter, lives in reporter.py. Both loops read what they share with the agent through `LoopHost`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Protocol

from pydantic import ValidationError

from thresher.agent import resources, timeline
from thresher.agent.attempts import Attempts
from thresher.agent.connectivity import Connectivity, is_outage, retry_backoff
from thresher.agent.fatal import AgentFatal
from thresher.agent.settings import AgentSettings
from thresher.agent.spool import Spool
from thresher.client.http import ApiError, HttpClient
from thresher.model.heartbeat_rule import heartbeat_due
from thresher.model.states import NodeAdminState
from thresher.wire.agent import Assignment, HeartbeatAnswer

log = logging.getLogger("thresher.agent")

KILLED_BY_SERVER = "killed by server"


class Beats:
    """What both loops share of the heartbeat: when the agent last sent its figures (a heartbeat, or a
    poll carrying them), and the node's admin state last heard (logged when it changes)."""

    def __init__(self) -> None:
        self.sent_at = -math.inf
        self.admin_state: NodeAdminState | None = None

    def sent(self) -> float:
        self.sent_at = time.monotonic()
        return self.sent_at

    def failed(self, sent_at: float) -> None:
        """The send at `sent_at` did not reach the server: it proves nothing (unless a later one went)."""
        if self.sent_at == sent_at:
            self.sent_at = -math.inf

    def age(self) -> float:
        return time.monotonic() - self.sent_at

    def follow(self, state: NodeAdminState | None) -> None:
        if state and state != self.admin_state:
            if self.admin_state is not None or state != NodeAdminState.ENABLED:
                log.info("node is now %s", state)
            self.admin_state = state


class LoopHost(Protocol):
    """What the loops need of the agent that runs them."""

    settings: AgentSettings
    conn: Connectivity
    spool: Spool
    stop_event: threading.Event
    beats: Beats

    @property
    def poll_beat_s(self) -> float | None:
        """The wait of an idle poll that carries the heartbeat; None: the server does not count one."""

    @property
    def token(self) -> str | None: ...

    @property
    def heartbeat_s(self) -> float: ...

    @property
    def attempts(self) -> Attempts: ...

    def client(self, token: str | None, timeout: float | None = None) -> HttpClient: ...

    def reenrol(self) -> None: ...

    def deliver_reports(self, timeout: float) -> bool: ...


def work_loop(host: LoopHost) -> None:
    """Ask for work until the agent stops; start what comes, obey the kill list that comes with it."""
    settings = host.settings
    wait = settings.work_wait_s if host.poll_beat_s is None else host.poll_beat_s
    client = host.client(host.token, timeout=wait + settings.http_timeout_s)
    backoff = retry_backoff(settings)
    refusal_logged = False
    stop = host.stop_event
    away = False  # the server was out of reach: reports finished meanwhile wait in the spool
    while not stop.is_set():
        if away and host.spool.pending():
            # Back after an outage: the reports first. An attempt the server declared lost while this node
            # was cut off, and that succeeded meanwhile, keeps its success only if the server hears of it
            # before it hands the task out again (possibly to this very node).
            host.deliver_reports(settings.http_timeout_s)
        ask, sent_at = _work_ask(host)
        try:
            answer = client.request("POST", "/agent/work", json=ask, params={"wait": wait},
                                    timeout=wait + settings.http_timeout_s)
        except Exception as exc:
            if sent_at is not None:
                host.beats.failed(sent_at)
            if is_outage(exc):
                host.conn.failed("asking for work", exc)
                away = True
            elif isinstance(exc, ApiError) and exc.status == 401 and not stop.is_set():
                log.error("the server refused this node's credential (%s): enrolling again", exc.detail)
                try:
                    host.reenrol()
                except AgentFatal as fatal:
                    log.error("%s", fatal)
                if client.token != host.token:
                    client = host.client(host.token, timeout=wait + settings.http_timeout_s)
                    continue
            elif isinstance(exc, ApiError):
                if not refusal_logged:
                    log.error("server refused the work request: %s", exc)
                    refusal_logged = True
            else:
                log.exception("work loop: unexpected error")
            stop.wait(backoff.next_delay())
            continue
        host.conn.ok()
        backoff.reset()
        refusal_logged = away = False
        if not isinstance(answer, dict):
            continue
        try:
            if sent_at is not None and isinstance(answer.get("admin_state"), str):
                host.beats.follow(NodeAdminState(answer["admin_state"]))
            start_work(host.attempts, answer)
        except Exception:  # a bad answer or a full disk must not end the work loop
            log.exception("work loop: could not handle the server's answer")
            stop.wait(backoff.next_delay())


def _work_ask(host: LoopHost) -> tuple[dict[str, Any], float | None]:
    """The body of the next poll for work: the heartbeat while idle, where the server counts it as one
    (with when it was sent), and the tasks it keeps waiting (`tasks_ahead`); else `{}`."""
    ask: dict[str, Any] = {"ahead": host.settings.tasks_ahead} if host.settings.tasks_ahead else {}
    if host.poll_beat_s is None:
        return ask, None
    body = heartbeat_body(host)
    if body["running"] or body["pending_reports"]:  # busy: the heartbeat loop speaks for it
        return ask, None
    return {**ask, "heartbeat": body}, host.beats.sent()


def start_work(attempts: Attempts, answer: dict[str, Any]) -> None:
    """Obey a work answer (the poll's, or one riding on a finish report's): kill, then start."""
    attempts.kill(_kill_list(answer), KILLED_BY_SERVER, _kill_reasons(answer))
    for item in answer.get("assignments") or []:
        try:  # one by one: an assignment this agent cannot read must not keep the others from starting
            assignment = Assignment.model_validate(item)
        except ValidationError as exc:
            log.error("ignoring an assignment this agent cannot read (%s): %r", _first_error(exc), item)
            continue
        timeline.mark("assigned", assignment.attempt_id)
        attempts.start(assignment)


def _kill_list(answer: dict[str, Any]) -> list[int]:
    """The attempts a work answer (`wire.agent.WorkAnswer.kill`) says to stop; ids it cannot read are left out."""
    kill = answer.get("kill") or []
    return [k for k in kill if isinstance(k, int)] if isinstance(kill, list) else []


def _kill_reasons(answer: dict[str, Any]) -> dict[int, str]:
    """Why the server stops them (`WorkAnswer.kill_reasons`, JSON's keys are text); what it cannot read is
    left out: that attempt ends "killed by server"."""
    said = answer.get("kill_reasons")
    if not isinstance(said, dict):
        return {}
    return {int(k): v for k, v in said.items() if isinstance(k, str) and k.isdigit() and isinstance(v, str) and v}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in error.get('loc', ())) or 'answer'}: {error.get('msg')}"


def heartbeat_body(host: LoopHost) -> dict[str, Any]:
    """Running attempts first, then the spool: an attempt that finishes in between shows in one
    list or both, never in neither (which the server would read as lost)."""
    running = host.attempts.stats()
    pending = host.spool.pending_ids()
    return dict(resources.sample_load(), running=running, pending_reports=pending)


def heartbeat_loop(host: LoopHost) -> None:
    """Beat every `host.heartbeat_s` seconds until the agent stops; rest while an idle poll carries the
    heartbeat (`model/heartbeat_rule.heartbeat_due`)."""
    client = host.client(host.token)
    resources.sample_load()  # prime cpu_percent
    refused = False
    stop = host.stop_event
    while not stop.is_set():
        if client.token != host.token:  # enrolled again
            client = host.client(host.token)
        body = heartbeat_body(host)
        if not heartbeat_due(idle=not body["running"] and not body["pending_reports"],
                             since_last_beat_s=host.beats.age(), heartbeat_s=host.heartbeat_s,
                             poll_beat_s=host.poll_beat_s):
            stop.wait(host.heartbeat_s)
            continue
        sent_at = host.beats.sent()
        try:
            answer = client.post("/agent/heartbeat", body)
        except Exception as exc:
            host.beats.failed(sent_at)
            if is_outage(exc):
                host.conn.failed("heartbeat", exc)
            elif isinstance(exc, ApiError):
                if not refused:
                    log.warning("heartbeat refused: %s", exc)
                refused = True
            else:
                log.exception("heartbeat: unexpected error")
        else:
            host.conn.ok()
            refused = False
            try:
                beat = HeartbeatAnswer.model_validate(answer)
            except ValidationError as exc:
                log.error("heartbeat: the server's answer cannot be read (%s): %r", _first_error(exc), answer)
            else:
                try:
                    host.attempts.kill(beat.kill, KILLED_BY_SERVER, beat.kill_reasons)
                except Exception:
                    log.exception("heartbeat: could not apply the kill list")
                host.beats.follow(beat.admin_state)
        stop.wait(host.heartbeat_s)
