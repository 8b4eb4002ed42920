"""Every setting of the agent in one model: who it is, where the server is, and the timings it runs by.

`thresher agent` and `python -m thresher.agent` fill it through `thresher.config.load_settings` (flags,
then `THRESHER_AGENT_*` and the older variables, then `[agent]` of `--config thresher.toml`), and the
agent's parts read their figures from it instead of module constants. docs/configuration.md is
generated from this model: the descriptions here are the user's documentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from thresher.config import Outside, ThresherSettings


class AgentSettings(ThresherSettings):
    """Settings of a render node agent (`thresher agent`, `python -m thresher.agent`)."""

    model_config = SettingsConfigDict(env_prefix="THRESHER_AGENT_")

    # -- who and where --
    server: Annotated[str | None, Outside(flag="--server", env=("THRESHER_SERVER",))] = Field(
        None, description="Server URL, e.g. `http://farm:8000`. `thresher agent` falls back to the saved "
                          "client config.")
    token: Annotated[str | None, Outside(flag="--token", env=("THRESHER_ENROLL_TOKEN",))] = Field(
        None, description="Enrolment token (first start) or this node's token. `thresher agent` falls back "
                          "to `enroll.token` of the local data folder, `python -m thresher.agent` to "
                          "`$THRESHER_TOKEN`.")
    name: Annotated[str | None, Outside(flag="--name")] = Field(
        None, description="Node name; the short host name when not set.")
    state_dir: Annotated[Path | None, Outside(flag="--state-dir")] = Field(
        None, description="Where the agent keeps its credential, unsent reports and task logs; "
                          "`$THRESHER_HOME/agents/<name>` or the platform's user state folder when not set.")

    ca_file: Annotated[Path | None, Outside(flag="--ca-file", env=("THRESHER_CA_FILE",))] = Field(
        None, description="PEM file of the CA certificate(s) that signed an https server's certificate (a private "
                          "CA); the public CAs when not set. The agent stops with a clear error when the server's "
                          "certificate fails the check (README: TLS).")

    # -- what this node offers --
    cores: Annotated[int | None, Outside(flag="--cores")] = Field(
        None, ge=1, description="Cores to offer; all when not set.")
    memory_mb: Annotated[int | None, Outside(flag="--memory")] = Field(
        None, ge=1, description="Memory to offer in MB (the flag also takes `16G`); all when not set.")
    gpus: Annotated[int | None, Outside(flag="--gpus")] = Field(
        None, ge=0, description="GPUs to offer; all NVIDIA GPUs found when not set. More than found adds "
                                "placeholders (for tests and simulations).")
    tags: Annotated[list[str], Outside(flag="--tags")] = Field(
        default_factory=list, description="Tags of this node, e.g. `gpu,linux`.")
    pool: Annotated[str | None, Outside(flag="--pool")] = Field(
        None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="The pool (cluster) this node serves, e.g. `gpu` (made on the server if new); when not set, "
                    "the node keeps the pool the server has for it (`default` for a new node), so a wrangler's "
                    "move survives the agent's restarts.")
    apps: Annotated[dict[str, str], Outside(flag="--app", env_entries="THRESHER_APP_")] = Field(
        default_factory=dict, description="Where applications are on this node, name to executable, e.g. "
                                          "`blender = \"/opt/blender/blender\"` (flag: `--app NAME=PATH`, "
                                          "repeatable).")

    # -- talking to the server --
    heartbeat_s: Annotated[float, Outside(flag="--heartbeat")] = Field(
        5.0, gt=0, description="Seconds between heartbeats; lowered to a third of the server's node timeout "
                               "when that is shorter.")
    work_wait_s: float = Field(
        20.0, gt=0, description="Seconds the server may hold a request for work open (long poll) when it has "
                                "none.")
    http_timeout_s: float = Field(
        15.0, gt=0, description="Seconds to wait for the server's answer to a call (on top of the long poll's "
                                "wait).")
    retry_initial_s: float = Field(
        0.25, gt=0, description="First delay before retrying a call the server did not answer; it doubles on "
                                "each failure (jittered).")
    retry_max_s: float = Field(
        5.0, gt=0, description="Longest delay between retries while the server is unreachable.")
    goodbye_timeout_s: float = Field(
        2.0, gt=0, description="Seconds to wait for the server to hear that this node is leaving.")

    # -- logs and reports --
    report_interval_s: float = Field(
        0.3, gt=0, description="Seconds between two passes of the reporter (log bytes and finish reports) "
                               "when nothing nudges it.")
    report_gather_s: float = Field(
        0.02, ge=0, le=1.0, description="While tasks wait on the node (`tasks_ahead`), how long a finish report "
                                        "waits for the reports of other tasks ending meanwhile, to go in the same "
                                        "call (fewer calls for the agent and the server): the freed cores have "
                                        "their next tasks already. Never while a core has nothing waiting.")
    log_wake_bytes: int = Field(
        64 * 1024, ge=1, description="Bytes of new task output that make the reporter send at once.")
    log_chunk_bytes: int = Field(
        256 * 1024, ge=4, description="Largest piece of a task log sent in one call.")
    finish_asks_work: bool = Field(
        True, description="A finish report also asks for work, and its answer carries the freed slot's next "
                          "task (one round trip instead of report, wake-up, ask); off: only the long poll "
                          "brings work, as agents before protocol 1.1 did.")
    tasks_ahead: int = Field(
        0, ge=0, le=4096, description="Cores' worth of tasks kept waiting on the node beyond what it runs now, each "
                                      "started the moment a running task leaves room (`agent/room.py`): for farms "
                                      "of many short tasks, whose slots otherwise wait for a round trip to the "
                                      "server between two tasks. 0: the node takes only what it can start at "
                                      "once, so no task waits on a busy node while another node could start it. "
                                      "A waiting task shows as running from its assignment on.")
    thread_switch_s: float = Field(
        0.001, gt=0, le=0.1, description="Python's thread switch interval in the agent (`sys.setswitchinterval`; "
                                         "Python's default is 0.005): a runner thread woken by its task's exit, "
                                         "or the reporter woken by its report, waits at most this long for "
                                         "another thread to hand over, so a freed slot is reported sooner.")
    spool_retry_s: float = Field(
        1.0, gt=0, description="Seconds between tries to write a finish report to disk when that fails "
                               "(disk full).")

    # -- running tasks --
    process_sample_s: float = Field(
        0.5, gt=0, description="Seconds between two samples of a task's CPU and memory.")
    kill_grace_s: float = Field(
        5.0, ge=0, description="Seconds between SIGTERM and SIGKILL when a task is killed or times out.")
    leftover_grace_s: float = Field(
        1.0, ge=0, description="Seconds between SIGTERM and SIGKILL for processes a task left behind, and for "
                               "those a previous agent run left (at most `kill_grace_s` for the former).")
    output_mtime_slack_s: float = Field(
        2.0, ge=0, description="An expected output must have been modified after the attempt started, less "
                               "this: file servers keep coarse or skewed times (FAT and some SMB shares count "
                               "in 2 s steps).")

    pin_cpus: bool = Field(
        False, description="Pin each task to CPUs of its own, as many as it reserved, so concurrent tasks "
                           "never share a CPU (Linux; a task runs unpinned when too few CPUs are free). Off: "
                           "tasks are held to their cores by thread flags and OMP_NUM_THREADS and friends only.")

    task_cgroups: bool = Field(
        True, description="Run each task in a cgroup v2 of its own where the agent may make one (Linux; root, or "
                          "systemd `Delegate=yes`): nothing a task starts can escape its end, and its CPU is counted "
                          "exactly. Where cgroups are not usable the agent says why at start and tracks the task's "
                          "processes instead (as subreaper of its tasks on Linux).")
    task_memory_max: bool = Field(
        False, description="With `task_cgroups`, cap each task's memory at its reservation (`memory.max`, and no swap): "
                           "the kernel ends a task over it (reported out of memory, retried with more) instead of letting it "
                           "crowd the node. Needs the memory controller delegated to the agent's cgroup.")

    memory_guard_free_mb: int | None = Field(
        None, ge=0, description="The memory guard: when the node has less free memory than this (MB), or its "
                                "tasks together use more than the memory it offers (`--memory`), the agent stops "
                                "the task furthest over its reservation and reports it out of memory (the server "
                                "retries it with more). Not set: 5% of RAM, at most 2048 MB; 0 turns the guard off.")

    # -- stopping --
    shutdown_grace_s: float = Field(
        2.0, ge=0, description="On SIGTERM/SIGINT: seconds between SIGTERM and SIGKILL for running tasks "
                               "(they are reported lost and run again elsewhere).")
    shutdown_flush_s: float = Field(
        5.0, ge=0, description="On SIGTERM/SIGINT: seconds to try to deliver reports still waiting; the rest "
                               "stay on disk for the next start.")

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_from_text(cls, value: Any) -> Any:
        """`gpu, linux` (a flag or an environment variable) is the list ["gpu", "linux"]."""
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("tags")
    @classmethod
    def _no_empty_tags(cls, value: list[str]) -> list[str]:
        return [t for t in value if t]


def app_entries(items: list[str]) -> dict[str, str]:
    """`--app NAME=PATH` flags as the `apps` table; ValueError names the first malformed one."""
    apps: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--app {item!r}: write NAME=PATH, e.g. blender=/opt/blender/blender")
        apps[name.strip()] = path.strip()
    return apps
