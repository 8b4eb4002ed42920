"""The agents' calls: what an agent sends (register, heartbeat, log, finish) and what it is answered.

The server's agent routes answer with a plain `JSONResponse` built from dicts (FastAPI's validation and
re-encoding walk is skipped on the hot path); these models give the OpenAPI document its shapes and
are what an agent may parse the answers with. `Assignment` has exactly the fields that
`server/dispatch.py::_assignment` sends.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from thresher.model.spec import MAX_GPUS, MAX_ID, Tags
from thresher.model.states import AttemptState, NodeAdminState, NodeState
from thresher.model.text import NameText, StoredText, Text, UnicodeBody
from thresher.wire.common import Problem

AttemptId = Annotated[int, Field(ge=1, le=MAX_ID)]
AppName = Annotated[NameText, Field(min_length=1, max_length=100)]
AppPath = Annotated[NameText, Field(max_length=4096)]
MAX_LOG_BYTES = 2**62  # log offsets are 64-bit columns

# How an agent may say an attempt ended (the live states are the server's to set).
REPORTED_STATES = (AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.KILLED, AttemptState.LOST)


# -- register ------------------------------------------------------------------------------------

class Gpu(BaseModel):
    """One GPU of a node, as the agent found it."""

    index: int = Field(..., ge=0)
    name: NameText = Field("", max_length=200)
    memory_mb: int = Field(0, ge=0)
    uuid: NameText = Field("", max_length=200)


class Registration(UnicodeBody):
    """`POST /agent/register`: the node's facts (sent again on every start, to refresh them). Checked as
    people's input is (`model/text.py`): every name here is shown in the node lists."""

    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    hostname: NameText = Field("", max_length=255)
    os: NameText = Field("linux", max_length=32)
    cores: int = Field(..., ge=1, le=4096)
    memory_mb: int = Field(..., ge=1)
    gpus: list[Gpu] = Field(default_factory=list, max_length=MAX_GPUS)
    tags: Tags = Field(default_factory=list, max_length=100)
    apps: dict[AppName, AppPath] = Field(
        default_factory=dict, max_length=1000, description="application name -> executable on this node")
    instance_id: NameText = Field(default_factory=lambda: uuid.uuid4().hex, max_length=64)
    mac: str | None = Field(None, pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$",
                            description="the hardware address of the node's first network interface")
    pool: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
                             description="the pool the node serves (made if new); none: keep the one the "
                                         "server has (a new node joins `default`)")
    replace: bool = Field(False, description="admin token only: give this agent the name of a known node (its "
                                             "credential revoked, its id and history kept); an enrolment "
                                             "token never takes a known node's name")


class Registered(BaseModel):
    """The answer to a registration: the node's id and its own token."""

    node_id: int
    name: str
    token: str = Field(..., description="the node credential (new on enrolment; echoed when refreshing)")
    node_timeout_s: float = Field(..., description="silence after which the server declares the node down")
    poll_heartbeat: bool = Field(False, description="an idle agent's long poll for work may carry its heartbeat "
                                                    "(`WorkAsk.heartbeat`) and counts as one "
                                                    "(`model/heartbeat_rule.py`); absent from older servers")


# -- heartbeat -----------------------------------------------------------------------------------

class RunningAttempt(BaseModel):
    attempt_id: AttemptId
    cpu_s: float | None = None
    rss_mb: float | None = None
    progress: float | None = Field(None, ge=0, le=100)


class Heartbeat(BaseModel):
    """`POST /agent/heartbeat`: the node is alive, with its load and what it runs."""

    cpu_percent: float | None = None
    memory_used_mb: int | None = None
    load: float | None = None
    running: list[RunningAttempt] = Field(default_factory=list, max_length=100_000)
    pending_reports: list[AttemptId] = Field(default_factory=list, max_length=100_000,
                                             description="attempts finished but not reported yet")


class HeartbeatAnswer(BaseModel):
    kill: list[int] = Field(..., description="attempts to stop: the server no longer wants them run")
    kill_reasons: dict[int, str] | None = Field(None, description=(
        "why, for those of `kill` a person or the server stopped (`job killed by ana`): the agent ends the "
        "attempt's log with it (absent when none is given, and from older servers: the agent says `killed by "
        "server`)"))
    admin_state: NodeAdminState | None


# -- work ----------------------------------------------------------------------------------------

class Assignment(BaseModel):
    """One task to run, its command built for this node (paths mapped for its OS, its executables)."""

    attempt_id: int
    task_id: int
    job_id: int
    job_name: str
    layer: str
    frames: str
    argv: list[str] = Field(..., description='with `shell: true`, `["<command line>"]` run by `/bin/sh -c`')
    shell: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    timeout_s: float | None = None
    gpus: list[int] = Field(default_factory=list, description="indices of the GPUs given to the task")
    outputs: list[str] = Field(default_factory=list,
                               description="files the task must write (non-empty, written during the run)")
    progress_patterns: list[str] = Field(default_factory=list,
                                         description="regexes with named groups (`pct`, `done`/`total`, ...)")
    error_patterns: list[str] = Field(default_factory=list, description="regexes: a matching line fails the attempt")
    memory_mb: int = Field(0, ge=0, description="memory reserved for the task (the agent's memory guard stops "
                                                "a task far over it when the node runs short); 0: unknown")
    cores: int = Field(0, ge=0, description="cores reserved for the task (its thread variables, "
                                            "OMP_NUM_THREADS and friends, are set to it); 0: unknown")


# The most cores' worth of waiting tasks an agent may ask for (the server counts at most the node's cores).
MAX_AHEAD = 4096


class WorkAsk(BaseModel):
    """`POST /agent/work`'s body: `{}` (what older agents send), or an idle agent's heartbeat."""

    heartbeat: Heartbeat | None = Field(None, description="the node's heartbeat, carried by an idle agent's poll "
                                                          "(`Registered.poll_heartbeat`): it counts as one")
    ahead: int = Field(0, ge=0, le=MAX_AHEAD, description="cores' worth of tasks the agent keeps waiting on the "
                                                          "node beyond what it can run now (agent setting "
                                                          "`tasks_ahead`; at most the node's cores count)")


class WorkAnswer(BaseModel):
    """The answer to a long poll for work: what to start and what to stop (both may be empty)."""

    assignments: list[Assignment]
    kill: list[int]
    kill_reasons: dict[int, str] | None = Field(None, description=(
        "why, for those of `kill` a person or the server stopped (`job killed by ana`): the agent ends the "
        "attempt's log with it (absent when none is given, and from older servers: the agent says `killed by "
        "server`)"))
    admin_state: NodeAdminState | None = Field(None, description="the node's admin state, when the poll carried "
                                                                 "a heartbeat")


# -- goodbye -------------------------------------------------------------------------------------

class Goodbye(BaseModel):
    state: NodeState


# -- log -----------------------------------------------------------------------------------------

class LogChunk(BaseModel):
    """`POST /agent/attempts/{id}/log`: log text at its byte offset (UTF-8) in the attempt's log."""

    offset: int = Field(..., ge=0, le=MAX_LOG_BYTES)
    data: str


class LogAccepted(BaseModel):
    next_offset: int = Field(..., description="bytes of the log the server holds")


class LogGap(Problem):
    """409: the chunk starts past what the server holds; resend from `next_offset`."""

    next_offset: int


# -- finish --------------------------------------------------------------------------------------

class FinishReport(BaseModel):
    attempt_id: AttemptId
    status: str = Field(..., pattern=f"^({'|'.join(REPORTED_STATES)})$")
    exit_code: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    reason: StoredText | None = Field(None, max_length=10_000, description="why it ended so; what a database "
                                      "cannot hold (NUL) is kept as U+FFFD, never refused")
    log_size: int = Field(0, ge=0, le=MAX_LOG_BYTES)
    ended_at: Text | None = Field(None, max_length=64)
    out_of_memory: bool = Field(False, description="the agent's memory guard or the kernel's OOM killer ended it; "
                                                   "the server retries the task with more memory")
    waited_s: float | None = Field(None, ge=0, le=366 * 86_400,
                                   description="seconds from the assignment's arrival to the process start "
                                               "(a task kept waiting for room, `tasks_ahead`): the attempt's "
                                               "start is moved that much later, so its duration is the run's")


class FinishBatch(BaseModel):
    """`POST /agent/finish`: how attempts ended, several at once."""

    reports: list[FinishReport] = Field(..., max_length=10_000)


class FinishResult(BaseModel):
    attempt_id: int
    accepted: bool
    next_offset: int | None = Field(..., description="not accepted: resend the log from here, then the report")
    reason: str | None = Field(None, description="not accepted and to be dropped: not this node's attempt")


class FinishAnswer(BaseModel):
    results: list[FinishResult]
    # Asked with `?work=1` (protocol 1.1): what the long poll would answer, so a freed slot starts its
    # next task without waiting for the poll's wake-up. Absent otherwise (and from older servers).
    assignments: list[Assignment] | None = None
    kill: list[int] | None = None
    kill_reasons: dict[int, str] | None = Field(None, description=(
        "why, for those of `kill` a person or the server stopped (`job killed by ana`): the agent ends the "
        "attempt's log with it (absent when none is given, and from older servers: the agent says `killed by "
        "server`)"))
