"""Rich renderings of API objects for people. Pure functions: wire models in, Rich renderables out.

Kept apart from the commands so the tables can be tested without a server and reused by `demo`.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from thresher.model.estimate import task_words, words
from thresher.model.failure_summary import plural
from thresher.model.states import DONE_TASK_STATES, AttemptState, JobState, NodeAdminState, NodeState, TaskState
from thresher.wire.common import Page
from thresher.wire.jobs import (
    Attempt,
    Blocklist,
    DryRun,
    Estimate,
    FailureSummary,
    Job,
    JobSummary,
    Layer,
    Task,
    TaskCounts,
    TaskDetail,
)
from thresher.wire.meta import Template
from thresher.wire.nodes import Node

STATE_STYLES: dict[str, str] = {
    JobState.WAITING: "dim", JobState.BLOCKED: "bold yellow", JobState.QUEUED: "cyan", TaskState.READY: "cyan", TaskState.RUNNING: "bold blue",
    TaskState.PAUSED: "yellow", TaskState.HELD: "yellow", TaskState.SUCCEEDED: "green", TaskState.FAILED: "bold red", TaskState.KILLED: "red",
    TaskState.SKIPPED: "magenta", NodeState.UP: "green", NodeState.DOWN: "red", NodeAdminState.ENABLED: "green",
    NodeAdminState.DISABLED: "red", NodeAdminState.DRAINING: "yellow", AttemptState.KILLING: "red",
    AttemptState.LOST: "yellow",
}
"""The colour of each state, whichever kind of thing is in it (job, task, attempt or node states share names)."""


def _table(**options: Any) -> Table:
    """A plain table with a line under its head, as every listing here draws it."""
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True, **options)


def counted(count: int, word: str, empty: str | None = None) -> dict[str, Any]:
    """A listing's caption options: how many it holds (`3 pools`), or for none what adds one (the empty
    table as wide as that line, which a caption is never wider than)."""
    if empty and not count:
        return {"caption": empty, "caption_justify": "left", "min_width": len(empty)}
    return {"caption": plural(count, word), "caption_justify": "left"}


def listing_table(*columns: str, **options: Any) -> Table:
    """A listing with these columns, drawn as every other listing of the CLI."""
    table = _table(**options)
    for column in columns:
        table.add_column(column)
    return table


def state_text(state: str | None) -> Text:
    value = state or "-"
    return Text(value, style=STATE_STYLES.get(value, ""))


def progress_bar(percent: float | None, width: int = 20) -> Text:
    """A text bar like `████████░░░░ 60%`; plain characters so it survives any terminal."""
    pct = max(0.0, min(100.0, float(percent or 0)))
    filled = int(round(width * pct / 100))
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {pct:3.0f}%")
    return bar


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def short_time(moment: datetime | None) -> str:
    """Local time, date only when not today: what a wrangler scans a list for."""
    if moment is None:
        return "-"
    local = _utc(moment).astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%b %d %H:%M")  # `Dec 01 14:02`: a month name reads right in every locale's order


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    finish = _utc(end) if end is not None else datetime.now(timezone.utc)
    seconds = max(0, int((finish - _utc(start)).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_text(est: Estimate | None) -> str:
    """`ETA 14:32 (about 25 min, from 40 finished tasks, good)`, or why there is no estimate yet."""
    if est is None:
        return "-"
    if est.eta_at is None or est.confidence == "done":
        return words(est)
    return f"ETA {short_time(est.eta_at)} ({words(est)})"


def done_count(counts: TaskCounts) -> int:
    return sum(getattr(counts, state) for state in DONE_TASK_STATES)


def counts_text(counts: TaskCounts) -> Text:
    """Non-zero task counts, coloured by state: `3 running 10 succeeded 1 failed`."""
    text = Text()
    for key, value in counts.model_dump().items():
        if value:
            if text:
                text.append(" ")
            text.append(f"{value} {key}", style=STATE_STYLES.get(key, ""))
    return text or Text("-", style="dim")


def job_state(job: JobSummary) -> Text:
    text = state_text(job.state)
    if job.paused and job.state != JobState.PAUSED:
        text.append(" (paused)", style="yellow")
    return text


def jobs_table(answer: Page[JobSummary]) -> Table:
    items, total = answer.items, answer.total
    caption = f"{len(items)} of {plural(total, 'job')}" if total != len(items) else plural(total, "job")
    table = _table(caption=caption, caption_justify="left")
    for column in ("ID", "NAME", "PROJECT", "OWNER", "PRI", "STATE", "PROGRESS", "SUBMITTED"):
        table.add_column(column, justify="right" if column in ("ID", "PRI") else "left",
                         no_wrap=column != "NAME", min_width=12 if column == "NAME" else None)
    for job in items:
        table.add_row(
            str(job.id), job.name, job.project, job.owner, str(job.priority), job_state(job),
            tasks_bar(done_count(job.counts), job.total_tasks), short_time(job.submitted_at),
        )
    return table


def tasks_bar(done: int, total: int, width: int = 8) -> Text:
    """`██████░░ 6/8`: progress as a bar plus the count a wrangler actually wants."""
    filled = int(round(width * done / total)) if total else 0
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {done}/{total}")
    return bar


def job_view(job: Job) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    label = job.project or "-"
    if job.sequence or job.shot:
        label += f" / {job.sequence or '-'} / {job.shot or '-'}"
    rows: list[tuple[str, Any]] = [
        ("job", f"{job.id}  {job.name}"),
        ("state", job_state(job)),
        ("progress", progress_bar(job.progress)),
        ("eta", eta_text(job.estimate)),
        ("tasks", counts_text(job.counts)),
        ("project", label),
        ("owner", job.owner or "-"),
        ("priority", str(job.priority)),
        ("submitted", short_time(job.submitted_at)),
        ("finished", short_time(job.finished_at)),
    ]
    if job.archived_at:  # its task rows are gone: said here, or an empty `thresher tasks` reads as a lost job
        rows.insert(2, ("archived", Text(f"{short_time(job.archived_at)}: tasks, attempts and logs deleted"
                                         f"{archived_kept(job)}", style="yellow")))
    if job.folder:
        rows.insert(5, ("folder", job.folder))
    if job.urgent:
        rows.insert(2, ("urgent", f"yes, by {job.urgent_by or '-'} at {short_time(job.urgent_at)}"))
    if job.depends_on:
        rows.append(("depends on", ", ".join(str(d) for d in job.depends_on)))
    if job.pending:
        rows.append(("waiting", job.pending))
    rows.append(("failures", "none of its own (what blocks it: waiting)" if job.state == JobState.BLOCKED and not
                 job.failures else plural(job.failures, "failed attempt")))
    if job.stop_reason:
        rows.append(("stopped", Text(job.stop_reason, style="bold red")))
    blocked = [entry.node for entry in job.blocklist if entry.blocked]
    if job.blocklist:
        failed_it = f"{plural(len(job.blocklist), 'node')} failed it"
        rows.append(("blocklist", ", ".join(blocked) + f" blocked ({failed_it})" if blocked else
                     f"none blocked ({failed_it})"))
    for key, value in rows:
        head.add_row(key, value)

    layers = _table(title="layers", title_justify="left")
    for column in ("LAYER", "TEMPLATE", "FRAMES", "CHUNK", "NEEDS", "STATE", "PROGRESS", "TASK TIME", "ETA", "AFTER"):
        layers.add_column(column, no_wrap=column not in ("LAYER", "AFTER", "ETA"))
    for layer in job.layers:
        needs = f"{layer.cores}c"
        if layer.memory_mb:
            needs += f" {layer.memory_mb}M"
        if layer.gpus:
            needs += f" {layer.gpus}gpu"
        if layer.service:
            needs += f" ({layer.service})"  # the service whose defaults it took
        bar = tasks_bar(done_count(layer.counts), layer.total_tasks)
        bar.append(f" {layer.progress:.0f}%")
        layers.add_row(layer.name, layer.template, layer.frames, str(layer.chunk), needs, state_text(layer.state), bar,
                       task_words(layer.estimate) if layer.estimate else "-", eta_text(layer.estimate),
                       ", ".join(layer.depends_on) or "-")
    notes = [Text(f"  layer {layer.name}: {scout_words(layer)}") for layer in job.layers if layer.scout]
    notes += [Text(f"  layer {layer.name}: {chunk_words(layer)}") for layer in job.layers if layer.chunk_decision]
    return Group(head, Text(""), layers, *notes)


def archived_kept(job: Job) -> str:
    """` (kept: 4 tasks, 4 attempts, 0 failed)`: what an archived job keeps of the rows archiving deleted
    (`server/retention.py`), for `thresher job` and `thresher tasks`, which say it was archived."""
    if job.stats is None:
        return ""
    return (f" (kept: {plural(job.stats.tasks, 'task')}, {plural(job.stats.attempts, 'attempt')}, "
            f"{job.stats.failures} failed)")


def chunk_words(layer: Layer) -> str:
    """What `chunk: auto` decided for a layer, and from what."""
    d = layer.chunk_decision
    assert d is not None
    if d.status == "measuring":
        return f"chunk: auto, measuring seconds per frame (target {d.target_task_s:g} s a task, at most {d.max_chunk})"
    return f"chunk: auto -> {d.chunk} (target {d.target_task_s:g} s): {d.why}"


def scout_words(layer: Layer) -> str:
    """A layer's scout frames and where they stand, for `thresher job`."""
    scout = layer.scout
    assert scout is not None
    frames = ", ".join(str(f) for f in scout.frames[:10]) + (" ..." if len(scout.frames) > 10 else "")
    done = f"released by {scout.released_by}" if scout.released_by else "released" if scout.released \
        else f"{layer.counts.held} tasks held ({scout.release} release)"
    return f"scout frames {frames} ({scout.spec}): {done}" + (f"; {layer.pending}" if layer.pending
                                                                 and layer.counts.held else "")


def tasks_table(answer: Page[Task]) -> Table:
    items, total = answer.items, answer.total
    caption = f"{len(items)} of {plural(total, 'task')}" if total != len(items) else plural(total, "task")
    table = _table(caption=caption, caption_justify="left")
    for column in ("ID", "LAYER", "#", "FRAMES", "STATE", "PROGRESS", "TRIES", "NODE", "ATTEMPT", "STARTED", "TIME",
                   "REASON"):
        table.add_column(column, justify="right" if column in ("ID", "#", "TRIES", "ATTEMPT") else "left",
                         no_wrap=column != "REASON")
    for task in items:
        table.add_row(
            str(task.id), task.layer, str(task.index), task.frames, state_text(task.state), task_progress(task),
            str(task.tries), task.node or "-", str(task.attempt_id or "-"), short_time(task.started_at),
            duration(task.started_at, task.ended_at), task.reason or "",
        )
    return table


def task_progress(task: Task) -> Text:
    """A small bar: full once done, the agent's last parsed percent while it runs, empty before."""
    if task.state in DONE_TASK_STATES and task.state != TaskState.FAILED:
        return progress_bar(100, width=6)
    if task.state == TaskState.RUNNING or task.progress:
        return progress_bar(task.progress, width=6)
    return Text("-", style="dim")


def task_view(task: TaskDetail, tail: list[str], tail_of: Attempt | None) -> Group:
    """One task: what it is, every attempt (node, times, exit, CPU, peak memory, reason) and its last log lines."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("task", f"{task.id}  job {task.job_id}, layer {task.layer} #{task.index}")
    head.add_row("frames", task.frames)
    head.add_row("state", state_text(task.state))
    head.add_row("progress", task_progress(task))
    head.add_row("tries", str(task.tries) + (f" (lost {plural(task.lost, 'time')})" if task.lost else ""))
    head.add_row("node", task.node or "-")
    if task.reason:
        head.add_row("reason", Text(task.reason, style="bold red" if task.state == TaskState.FAILED else ""))
    parts: list[Any] = [head, Text(""), attempts_table(task.attempts)]
    if tail_of is not None:
        parts.append(Text(f"last {plural(len(tail), 'line')} of the log of attempt {tail_of.number} "
                          f"(thresher log {task.id}):", style="bold"))
        parts.append(Text("\n".join(tail) if tail else "(empty)", style="" if tail else "dim"))
    return Group(*parts)


def failures_view(summary: FailureSummary) -> Group:
    """Why a job failed: one line, then each group of failed attempts with its reason, tasks and nodes. With
    no task failed now (a job stopped at its failure limit whose tasks wait to be retried, or one finished
    since), the line says so and is not in red: nothing there failed in the end. A blocked job's line says
    what blocks it, and the failures of each job that does follow, each as its own."""
    failed = summary.failed_tasks or any(up.failed_tasks for up in summary.upstream)
    style = "bold red" if failed else "yellow"
    parts: list[Any] = [Text(f"job {summary.job_id} {summary.state}: {summary.summary}", style=style)]
    if summary.groups:
        said = any(group.last_line for group in summary.groups)
        table = listing_table("REASON", "ATTEMPTS", "TASKS", "NODES", *(["LAST LINE"] if said else []))
        for group in summary.groups:
            tasks = ", ".join(str(t) for t in group.tasks[:20]) + (" ..." if len(group.tasks) > 20 else "")
            table.add_row(group.reason, str(group.attempts), tasks, ", ".join(group.nodes),
                          *([group.last_line or "-"] if said else []))
        parts.append(table)
    for up in summary.upstream:
        parts.extend([Text(""), failures_view(up)])
    return Group(*parts)


def attempts_table(attempts: list[Attempt]) -> Table:
    """A task's attempts, first try first; one the memory guard or the OOM killer ended says so."""
    table = _table(caption=plural(len(attempts), "attempt"), caption_justify="left")
    for column in ("ID", "#", "NODE", "STATE", "STARTED", "ENDED", "TIME", "EXIT", "CPU S", "PEAK MB", "REASON"):
        table.add_column(column, justify="right" if column in ("ID", "#", "EXIT", "CPU S", "PEAK MB") else "left",
                         no_wrap=column != "REASON")
    for a in attempts:
        state = state_text(a.state)
        if a.out_of_memory:
            state.append(" out of memory", style="bold red")
        table.add_row(str(a.id), str(a.number), a.node, state, short_time(a.started_at), short_time(a.ended_at),
                      duration(a.started_at, a.ended_at), "-" if a.exit_code is None else str(a.exit_code),
                      "-" if a.cpu_s is None else f"{a.cpu_s:.1f}" if a.cpu_s < 10 else f"{a.cpu_s:.0f}",
                      "-" if not a.peak_rss_mb else f"{a.peak_rss_mb:.0f}",  # 0: never sampled (too short)
                      a.reason or "")
    return table


def node_state(node: Node) -> Text:
    """`up`, or `up, draining`: the admin state only when it is not the usual `enabled`."""
    text = state_text(node.state)
    if node.admin_state != NodeAdminState.ENABLED:
        text.append(", ")
        text.append_text(state_text(node.admin_state))
    return text


def nodes_table(nodes: list[Node]) -> Table:
    table = _table(caption=plural(len(nodes), "node"), caption_justify="left")
    any_gpus = any(node.gpus for node in nodes)
    columns = ["ID", "NAME", "STATE", "POOL", "CORES", "MEM GB", *(["GPUS"] if any_gpus else []), "CPU%", "RUN", "FREE",
               "TAGS", "SEEN"]
    for column in columns:
        table.add_column(column, no_wrap=column != "TAGS",
                         justify="right" if column in ("ID", "CORES", "MEM GB", "CPU%", "RUN") else "left")
    for node in nodes:
        free_text = f"{node.free.cores}c {_gb(node.free.memory_mb)}G"
        if any_gpus:
            free_text += f" {node.free.gpus}g"
        row: list[Any] = [str(node.id), node.name, node_state(node), node.pool, str(node.cores), _gb(node.memory_mb)]
        if any_gpus:
            row.append(str(len(node.gpus)))
        row += ["-" if node.cpu_percent is None else f"{node.cpu_percent:.0f}", str(len(node.running)), free_text,
                ",".join(node.tags) or "-", short_time(node.last_seen)]
        table.add_row(*row)
    return table


def node_view(node: Node) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("node", f"{node.id}  {node.name}")
    grid.add_row("state", Text.assemble(state_text(node.state), " / ", state_text(node.admin_state)))
    grid.add_row("host", f"{node.hostname or '-'} ({node.os or '-'})")
    grid.add_row("pool", node.pool)
    grid.add_row("mac", node.mac or "-")
    grid.add_row("cores", str(node.cores))
    grid.add_row("memory", f"{_gb(node.memory_mb)} GB")
    for gpu in node.gpus:
        grid.add_row(f"gpu {gpu.index}", f"{gpu.name} {_gb(gpu.memory_mb)} GB")
    grid.add_row("tags", ", ".join(node.tags) or "-")
    grid.add_row("last seen", short_time(node.last_seen))
    grid.add_row("blocklisted by", ", ".join(f"job {j}" for j in node.blocklisted_by) or "-")
    grid.add_row("speed", f"{node.speed.speed:.2f}x the farm (on {plural(node.speed.layers, 'layer')}, "
                          f"{plural(node.speed.samples, 'task')})" if node.speed
                 else "unknown (no layer it ran has run on other nodes)")
    running = _table(title="running", title_justify="left")
    for column in ("ATTEMPT", "TASK", "JOB", "LAYER", "FRAMES", "PROGRESS", "CORES", "GPUS"):
        running.add_column(column)
    for item in node.running:
        running.add_row(str(item.attempt_id), str(item.task_id),
                        f"{item.job_id} {item.job_name}" if item.job_name else str(item.job_id),
                        item.layer or "-", item.frames or "-",
                        f"{item.progress:.0f}%" if item.progress else "-", str(item.cores),
                        ",".join(str(g) for g in item.gpus) or "-")
    return Group(grid, Text(""), running)


def blocklist_table(blocklist: Blocklist) -> Table:
    """The nodes that failed a job's attempts: how often, and whether the job's blocklist keeps them out."""
    table = _table(caption=f"job {blocklist.job_id}: {sum(e.blocked for e in blocklist.items)} of "
                           f"{len(blocklist.items)} nodes blocked", caption_justify="left")
    for column in ("NODE", "FAILURES", "BLOCKED", "LAST FAILED"):
        table.add_column(column, justify="right" if column == "FAILURES" else "left", no_wrap=True)
    for entry in blocklist.items:
        table.add_row(entry.node, str(entry.failures), Text("yes", style="bold red") if entry.blocked else "no",
                      short_time(entry.last_failed_at))
    return table


def templates_table(templates: list[Template]) -> Table:
    table = _table()
    table.add_column("TEMPLATE", no_wrap=True)
    table.add_column("DESCRIPTION")
    table.add_column("ARGS")
    for tpl in templates:
        props = tpl.args.get("properties") or {}
        required = set(tpl.args.get("required") or [])
        args = ", ".join(f"{name}*" if name in required else name for name in props)
        table.add_row(tpl.name, tpl.description, args or "-")
    return table


def dry_run_view(answer: DryRun) -> Group:
    parts: list[Any] = []
    verdict = "spec is valid" if answer.valid else "spec is NOT valid" + (f": {answer.detail}" if answer.detail else "")
    parts.append(Text(verdict, style="green" if answer.valid else "bold red"))
    for item in answer.errors:
        parts.append(Text(f"  error {item.field or '-'}: {item.message}", style="red"))
    for warning in answer.warnings:
        parts.append(Text(f"  warning: {warning}", style="yellow"))
    if answer.tasks:
        shown = plural(len(answer.tasks), "task") if answer.total_tasks <= len(answer.tasks) \
            else f"the first {len(answer.tasks):,} of {answer.total_tasks:,} tasks"
        table = _table(caption=shown, caption_justify="left")
        for column in ("LAYER", "#", "FRAMES", "COMMAND"):
            table.add_column(column, no_wrap=column != "COMMAND")
        for task in answer.tasks:
            command = task.argv[0] if task.shell and task.argv else shlex.join(task.argv)
            table.add_row(task.layer, str(task.index), task.frames, Text(command))
        parts.append(table)
    for layer in answer.layers:
        if layer.scout_frames:
            parts.append(Text(f"  layer {layer.name}: scout frames {', '.join(map(str, layer.scout_frames))} "
                              f"render first ({layer.scout_release} release of the rest)"))
        if layer.service:
            parts.append(Text(f"  layer {layer.name}: service {layer.service}: {layer.cores} cores, "
                              f"{layer.memory_mb} MB, {layer.gpus} GPUs, retries {layer.retries}"
                              + (f", tags {','.join(layer.tags)}" if layer.tags else "")
                              + (f", pools {','.join(layer.pools)}" if layer.pools else "")
                              + (f", limits {','.join(f'{k}:{v}' for k, v in layer.limits.items())}"
                                 if layer.limits else "")
                              + (f", timeout {layer.timeout:g}s" if layer.timeout else "")))
    return Group(*parts)


def _gb(mb: Any) -> str:
    try:
        return f"{float(mb) / 1024:.1f}"
    except (TypeError, ValueError):
        return "-"
