"""Jobs, their layers, tasks and attempts, attempt logs, and the steering calls' bodies."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from thresher.model.spec import MAX_ID
from thresher.model.states import AttemptState, JobState, TaskState
from thresher.wire.common import FieldError, Moment


class TaskCounts(BaseModel):
    """How many tasks are in each state."""

    waiting: int = 0
    held: int = 0
    ready: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    paused: int = 0
    killed: int = 0
    skipped: int = 0


_PROGRESS = "mean task progress, 0..100: done tasks count 100, running ones what their agent last parsed"


class JobStats(BaseModel):
    """What an archived job keeps of its tasks and attempts (`server/retention.py`)."""

    tasks: int = Field(0, description="tasks it had")
    attempts: int = Field(0, description="attempts they made")
    failures: int = Field(0, description="failed attempts")
    cpu_s: float = Field(0.0, description="CPU seconds of every attempt")
    wall_s: float = Field(0.0, description="wall seconds of every attempt, summed")


class JobSummary(BaseModel):
    """A job as lists show it."""

    id: int
    name: str
    owner: str
    submitted_by: str | None = Field(None, description="the wrangler or admin who submitted it on behalf of its owner")
    project: str
    sequence: str | None
    shot: str | None
    priority: int
    state: JobState
    paused: bool
    submitted_at: Moment
    finished_at: Moment
    counts: TaskCounts
    total_tasks: int
    progress: float = Field(..., description=_PROGRESS)
    archived_at: Moment = Field(None, description="when it was archived (out of the lists; its tasks gone)")
    stats: JobStats | None = Field(None, description="an archived job's statistics")


class Estimate(BaseModel):
    """How long a task takes and when the layer or job is done, learnt from its finished attempts
    (`thresher.model.estimate`, whose docstring says what it assumes)."""

    task_s: float | None = Field(None, description="estimated wall time of one task (median), seconds")
    low_s: float | None = Field(None, description="25th percentile of a task's time, seconds")
    high_s: float | None = Field(None, description="75th percentile of a task's time, seconds")
    samples: int = Field(0, description="succeeded attempts it rests on")
    eta_s: float | None = Field(None, description="seconds until its last task ends; null: no estimate yet")
    eta_at: Moment = Field(None, description="when its last task ends, at the current parallelism")
    confidence: str = Field(..., description='"rough" (under 5 samples or from progress), "fair", "good"; '
                                             '"none" without an estimate, "done" when finished')
    basis: str = Field(..., description="what it rests on, in words")
    reason: str | None = Field(None, description="why there is no estimate yet")


class Scout(BaseModel):
    """A layer's scout frames (`model/scouts.py`): rendered first, the rest held until released."""

    spec: str = Field(..., description="as submitted: fml:N, auto:N or a frame list")
    frames: list[int]
    release: str = Field(..., description="auto (once every scout task succeeded) or manual (by a person)")
    released: bool
    released_by: str | None = None
    probes: bool = Field(False, description="the frames chunk: auto measures with (no scout was asked for)")


class ChunkDecision(BaseModel):
    """What `chunk: auto` decided (`model/auto_chunk.py`): measuring, then the chunk and its samples."""

    status: str = Field(..., description="measuring, decided, or kept (nothing was measured)")
    target_task_s: float
    max_chunk: int
    chunk: int | None = None
    seconds_per_frame: float | None = None
    samples: list[dict[str, Any]] = Field(default_factory=list, description="task_id, frames, seconds")
    why: str | None = None
    rewritten: int | None = Field(None, description="held tasks rewritten")
    tasks: int | None = Field(None, description="tasks they became")
    decided_at: str | None = None


class ReleaseBody(BaseModel):
    """`POST /jobs/{id}/release`: let the tasks held behind scout frames go."""

    layer: str | None = Field(None, description="one layer (by name); every held layer when left out")


class ScoutBody(BaseModel):
    """`PUT /jobs/{id}/layers/{name}/scout`: new scout frames, before any of the layer's tasks started."""

    scout: str = Field(..., max_length=2000, description="fml:N, auto:N or a frame list like '1,50,100'")
    release: Literal["auto", "manual"] = "auto"


class Released(BaseModel):
    job_id: int
    layers: list[str] = Field(..., description="the layers whose held tasks were let go")


class Layer(BaseModel):
    """One layer of a job: its needs, and the state of its tasks."""

    id: int
    name: str
    template: str
    frames: str
    chunk: int
    cores: int
    memory_mb: int
    gpus: int
    tags: list[str]
    pools: list[str] = Field(default_factory=list, description="the pools its tasks may run in (any when empty)")
    limits: dict[str, int] = Field(default_factory=dict, description="licence units each task holds")
    retries: int
    timeout: float | None
    service: str | None = Field(None, description="the service whose defaults it took at submit")
    depends_on: list[str] = Field(..., description="names of the layers of this job it waits for, as submitted "
                                                 "(`GET /jobs/{id}/dependencies`: every kind, as they are now)")
    state: JobState
    paused: bool = Field(False, description="paused by itself (not by its job's pause): what is freed waits paused; "
                                            "a job's resume leaves it so")
    counts: TaskCounts
    total_tasks: int
    progress: float = Field(..., description=_PROGRESS)
    pending: str | None = Field(None, description="why its ready or waiting tasks are not running now")
    estimate: Estimate | None = Field(None, description="task time and ETA (the job detail only)")
    scout: Scout | None = Field(None, description="its scout frames, if it has some")
    chunk_decision: ChunkDecision | None = Field(None, description="chunk: auto, what it decided and from what")


class BlocklistEntry(BaseModel):
    """A node that failed a job's attempts: how often, and whether it gets none of the job's tasks."""

    node_id: int
    node: str = Field(..., description="the node's name")
    failures: int = Field(..., description="failed attempts of the job on this node")
    blocked: bool = Field(..., description="on the job's blocklist: dispatch gives it none of the job's tasks")
    last_failed_at: Moment


class Blocklist(BaseModel):
    """The nodes that failed a job's attempts (`GET /jobs/{id}/blocklist`)."""

    job_id: int
    items: list[BlocklistEntry]


class Job(JobSummary):
    """A job with its layers, the jobs it waits for and the spec it was submitted with."""

    layers: list[Layer]
    depends_on: list[int] = Field(..., description="ids of the jobs it waits for, as submitted "
                                                 "(`GET /jobs/{id}/dependencies`: every kind, as they are now)")
    pending: str | None = Field(None, description="why it runs nothing now (none while it runs or once finished)")
    spec: dict[str, Any] = Field(..., description="the submitted spec")
    urgent: bool = Field(False, description="ahead of fair share (a wrangler's call: `POST /jobs/{id}/urgent`)")
    urgent_by: str | None = Field(None, description="who marked it urgent")
    urgent_at: Moment = None
    folder: str | None = Field(None, description="the project's folder it is in; null: the project's own jobs")
    failures: int = Field(0, description="failed attempts since it was submitted, retried or resumed")
    stop_reason: str | None = Field(None, description="why it starts nothing new (its failure limit), until a "
                                                      "retry or resume")
    blocklist: list[BlocklistEntry] = Field(default_factory=list, description="the nodes that failed its "
                                                                              "attempts")
    estimate: Estimate | None = Field(None, description="when its last layer ends (layers in dependency order)")


class Submitted(Job):
    """A job just created (`POST /jobs`), with what its spec's check warned of: the same warnings a dry run
    of that spec lists (`model/inspection.py`), which the submitter would otherwise never hear. They are
    not stored: `GET /jobs/{id}` has none."""

    warnings: list[str] = Field(default_factory=list, description="things in the spec that are valid but "
                                "probably not what was meant, each `field: message` (as a dry run lists them)")


class Task(BaseModel):
    """One chunk of frames (or one tile or wedge value) of a layer."""

    id: int
    job_id: int
    layer_id: int
    layer: str
    index: int
    frames: str
    state: TaskState
    tries: int = Field(..., description="its attempts that failed or were killed, counted against the layer's "
                                        "`retries` (0 for a task that succeeded at once)")
    lost: int = Field(..., description="times its node went away while running it (not counted as tries)")
    node: str | None = Field(..., description="where its live or latest attempt ran")
    attempt_id: int | None = Field(..., description="its live or latest attempt")
    progress: float | None
    started_at: Moment
    ended_at: Moment
    part: dict[str, Any] | None = Field(..., description='the tile (`{"tile": [col, row], "tiles": [x, y]}`) or '
                                                         'wedge value (`{"wedge": v, "wedge_index": i}`) it renders')
    reason: str | None = Field(None, description="why its latest attempt ended as it did (none while it runs or "
                                                 "once it succeeded)")


class Attempt(BaseModel):
    """One run of a task on a node."""

    id: int
    task_id: int
    number: int = Field(..., description="1 for the task's first try")
    node: str
    state: AttemptState
    started_at: Moment
    ended_at: Moment
    exit_code: int | None
    cpu_s: float | None
    peak_rss_mb: float | None
    reason: str | None
    log_size: int
    gpus: list[int]
    memory_mb: int = Field(0, description="the memory reserved for it (an out-of-memory retry reserves more)")
    out_of_memory: bool = Field(False, description="the agent's memory guard or the kernel's OOM killer ended it "
                                                   "(its retry reserves more memory)")


class TaskDetail(Task):
    """A task with every attempt of it."""

    attempts: list[Attempt]


class LineTime(BaseModel):
    """Line `line` of a page's `data` (0-based) and the lines after it, up to the next entry, arrived at `at`."""

    line: int
    at: Moment


class LogPiece(BaseModel):
    """One page of an attempt's log, from byte `offset` (at most the server's `log_page_max_bytes`)."""

    attempt_id: int
    offset: int
    data: str
    next_offset: int = Field(..., description="where the next read starts")
    more: bool = Field(False, description="the server holds log past `next_offset` now: read on from there")
    complete: bool = Field(..., description="the attempt ended and all its log is here")
    times: list[LineTime] = Field(default_factory=list, description=(
        "when lines arrived, one entry where the time changes (a line's time is its first byte's; line 0 of a "
        "page that starts mid-line continues the previous page's last line, which keeps its time); none for "
        "logs stored before the server kept times"))


class DryRunTask(BaseModel):
    layer: str
    index: int
    frames: str
    argv: list[str]
    shell: bool
    outputs: list[str]
    part: dict[str, Any] | None = None


class DryRunLayer(BaseModel):
    """What each task of a layer would ask of a node, its service's defaults applied."""

    name: str
    service: str | None = None
    cores: int
    memory_mb: int
    gpus: int
    tags: list[str]
    pools: list[str]
    limits: dict[str, int]
    timeout: float | None = None
    retries: int
    scout_frames: list[int] = Field(default_factory=list, description="the frames rendered first (scout)")
    scout_release: str | None = None


class DryRun(BaseModel):
    """What a submit would create, written nowhere (`POST /jobs?dry_run=true`)."""

    valid: bool
    detail: str | None = Field(None, description="why a spec was refused (only in the CLI's verdict: the server "
                                                 "refuses with 422)")
    errors: list[FieldError]
    warnings: list[str]
    total_tasks: int
    tasks: list[DryRunTask] = Field(..., description="the first tasks, with their commands")
    layers: list[DryRunLayer] = Field(default_factory=list, description="each layer's needs, as its tasks would "
                                      "have them (its service's defaults applied)")


class RetryBody(BaseModel):
    task_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, max_length=100_000, description="default: every failed and killed task of the job")


class PriorityBody(BaseModel):
    priority: int = Field(..., ge=0, le=1000)


class FailureGroup(BaseModel):
    """Failed attempts of a job that failed the same way (`model/failure_summary.normalize_reason`)."""

    reason: str = Field(..., description="the reason they share, normalised (`exit code 1`, `out of memory`)")
    attempts: int = Field(..., description="failed attempts with this reason")
    tasks: list[int] = Field(..., description="ids of the tasks they belong to, ascending")
    nodes: list[str] = Field(..., description="the nodes they failed on, most failures first")
    example: str | None = Field(None, description="one of their reasons as the attempt recorded it")
    last_line: str | None = Field(None, description="the last line the task printed in that attempt, where "
                                                    "its node quoted one (`exit code 1 (last line: ...)`)")


class FailureSummary(BaseModel):
    """Why a job failed: its failed attempts grouped by reason, and the same in one line."""

    job_id: int
    state: JobState
    failed_tasks: list[int] = Field(..., description="ids of its tasks that are failed now")
    failed_attempts: int = Field(..., description="failed attempts counted in `groups`")
    truncated: bool = Field(False, description="only the newest failed attempts were grouped (there are more)")
    groups: list[FailureGroup] = Field(..., description="biggest group first")
    summary: str = Field(..., description="the same in one line, as `thresher job` and `thresher wait` print it; "
                                          "for a blocked job, what blocks it and those jobs' failures first")
    blocked_by: str | None = Field(None, description="for a blocked job: what blocks it (`job 4 failed`, "
                                                     "`job 30 layer main frames 1-2 failed`)")
    upstream: list[FailureSummary] = Field(default_factory=list, description=(
        "for a blocked job: the failure summaries of the other jobs whose failed, killed or blocked work "
        "blocks it (a blocked one's with its own upstream)"))


class AttemptCommand(BaseModel):
    """The command line an attempt's agent was sent, built again as dispatch built it (`server/commands.py`)."""

    attempt_id: int
    node: str = Field(..., description="the node it ran on; its OS and declared applications shaped the command")
    argv: list[str] = Field(..., description='with `shell: true`, `["<command line>"]` run by `/bin/sh -c`')
    shell: bool = False
    cwd: str | None = Field(None, description="working directory; none: the agent's own")
    env: dict[str, str] = Field(default_factory=dict, description="what it added to the agent's environment "
                                                                  "(the layer's env, then the template's)")


class LayerAction(StrEnum):
    """What a person may do to one layer of a job (`server/layer_steering.py`)."""

    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
    KILL = "kill"
    SKIP = "skip"
