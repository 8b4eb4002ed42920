"""Rich renderings of API objects for people. Pure functions: API JSON in, Rich renderables out.

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

STATE_STYLES = {
    "waiting": "dim", "queued": "cyan", "ready": "cyan", "running": "bold blue", "paused": "yellow",
    "succeeded": "green", "failed": "bold red", "killed": "red", "skipped": "magenta",
    "up": "green", "down": "red", "enabled": "green", "disabled": "red", "draining": "yellow",
    "killing": "red", "lost": "yellow",
}

DONE_COUNTS = ("succeeded", "skipped")


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


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def short_time(value: str | None) -> str:
    """Local time, date only when not today: what a wrangler scans a list for."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M")


def duration(start: str | None, end: str | None) -> str:
    begin = parse_time(start)
    if begin is None:
        return "-"
    finish = parse_time(end) or datetime.now(timezone.utc)
    seconds = max(0, int((finish - begin).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def done_count(counts: dict[str, int] | None) -> int:
    counts = counts or {}
    return sum(int(counts.get(key, 0) or 0) for key in DONE_COUNTS)


def counts_text(counts: dict[str, int] | None) -> Text:
    """Non-zero task counts, coloured by state: `3 running 10 succeeded 1 failed`."""
    text = Text()
    for key, value in (counts or {}).items():
        if value:
            if text:
                text.append(" ")
            text.append(f"{value} {key}", style=STATE_STYLES.get(key, ""))
    return text or Text("-", style="dim")


def job_state(job: dict[str, Any]) -> Text:
    text = state_text(job.get("state"))
    if job.get("paused") and job.get("state") != "paused":
        text.append(" (paused)", style="yellow")
    return text


def jobs_table(answer: dict[str, Any]) -> Table:
    items = answer.get("items", [])
    total = answer.get("total", len(items))
    caption = f"{len(items)} of {total} jobs" if total != len(items) else f"{total} jobs"
    table = Table(caption=caption, caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in ("ID", "NAME", "PROJECT", "OWNER", "PRI", "STATE", "PROGRESS", "SUBMITTED"):
        table.add_column(column, justify="right" if column in ("ID", "PRI") else "left",
                         no_wrap=column != "NAME", min_width=12 if column == "NAME" else None)
    for job in items:
        table.add_row(
            str(job.get("id")), job.get("name") or "", job.get("project") or "", job.get("owner") or "",
            str(job.get("priority", "")), job_state(job),
            tasks_bar(done_count(job.get("counts")), int(job.get("total_tasks") or 0)),
            short_time(job.get("submitted_at")),
        )
    return table


def tasks_bar(done: int, total: int, width: int = 8) -> Text:
    """`██████░░ 6/8`: progress as a bar plus the count a wrangler actually wants."""
    filled = int(round(width * done / total)) if total else 0
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {done}/{total}")
    return bar


def job_view(job: dict[str, Any]) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    label = job.get("project") or "-"
    if job.get("sequence") or job.get("shot"):
        label += f" / {job.get('sequence') or '-'} / {job.get('shot') or '-'}"
    rows: list[tuple[str, Any]] = [
        ("job", f"{job.get('id')}  {job.get('name', '')}"),
        ("state", job_state(job)),
        ("progress", progress_bar(job.get("progress"))),
        ("tasks", counts_text(job.get("counts"))),
        ("project", label),
        ("owner", job.get("owner") or "-"),
        ("priority", str(job.get("priority", "-"))),
        ("submitted", short_time(job.get("submitted_at"))),
        ("finished", short_time(job.get("finished_at"))),
    ]
    if job.get("depends_on"):
        rows.append(("depends on", ", ".join(str(d) for d in job["depends_on"])))
    for key, value in rows:
        head.add_row(key, value)

    layers = Table(title="layers", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in ("LAYER", "TEMPLATE", "FRAMES", "CHUNK", "NEEDS", "STATE", "PROGRESS", "AFTER"):
        layers.add_column(column, no_wrap=column not in ("LAYER", "AFTER"))
    for layer in job.get("layers", []):
        total = int(layer.get("total_tasks") or 0)
        done = done_count(layer.get("counts"))
        needs = f"{layer.get('cores', 1)}c"
        if layer.get("memory_mb"):
            needs += f" {layer['memory_mb']}M"
        if layer.get("gpus"):
            needs += f" {layer['gpus']}gpu"
        bar = tasks_bar(done, total)
        if layer.get("progress") is not None:
            bar.append(f" {float(layer['progress']):.0f}%")
        layers.add_row(
            layer.get("name", ""), layer.get("template", ""), str(layer.get("frames", "")),
            str(layer.get("chunk", "")), needs, state_text(layer.get("state")), bar,
            ", ".join(layer.get("depends_on") or []) or "-",
        )
    return Group(head, Text(""), layers)


def tasks_table(answer: dict[str, Any]) -> Table:
    items = answer.get("items", [])
    total = answer.get("total", len(items))
    caption = f"{len(items)} of {total} tasks" if total != len(items) else f"{total} tasks"
    table = Table(caption=caption, caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in ("ID", "LAYER", "#", "FRAMES", "STATE", "TRIES", "NODE", "ATTEMPT", "STARTED", "TIME"):
        table.add_column(column, justify="right" if column in ("ID", "#", "TRIES", "ATTEMPT") else "left",
                         no_wrap=True)
    for task in items:
        state = state_text(task.get("state"))
        if task.get("state") == "running" and task.get("progress"):
            state.append(f" {float(task['progress']):.0f}%")
        table.add_row(
            str(task.get("id")), task.get("layer") or "", str(task.get("index", "")), str(task.get("frames", "")),
            state, str(task.get("tries", 0)), task.get("node") or "-",
            str(task.get("attempt_id") or "-"), short_time(task.get("started_at")),
            duration(task.get("started_at"), task.get("ended_at")),
        )
    return table


def attempts_table(attempts: list[dict[str, Any]]) -> Table:
    table = Table(title="attempts", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in ("ATTEMPT", "#", "NODE", "STATE", "EXIT", "CPU S", "PEAK MB", "STARTED", "TIME", "REASON"):
        table.add_column(column, no_wrap=column != "REASON")
    for att in attempts:
        table.add_row(
            str(att.get("id")), str(att.get("number", "")), att.get("node") or "-", state_text(att.get("state")),
            "-" if att.get("exit_code") is None else str(att["exit_code"]),
            "-" if att.get("cpu_s") is None else f"{float(att['cpu_s']):.1f}",
            "-" if att.get("peak_rss_mb") is None else f"{float(att['peak_rss_mb']):.0f}",
            short_time(att.get("started_at")), duration(att.get("started_at"), att.get("ended_at")),
            att.get("reason") or "",
        )
    return table


def node_state(node: dict[str, Any]) -> Text:
    """`up`, or `up, draining`: the admin state only when it is not the usual `enabled`."""
    text = state_text(node.get("state"))
    admin = node.get("admin_state")
    if admin and admin != "enabled":
        text.append(", ")
        text.append_text(state_text(admin))
    return text


def nodes_table(nodes: list[dict[str, Any]]) -> Table:
    table = Table(caption=f"{len(nodes)} nodes", caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    any_gpus = any(node.get("gpus") for node in nodes)
    columns = ["ID", "NAME", "STATE", "CORES", "MEM GB", *(["GPUS"] if any_gpus else []), "CPU%", "RUN", "FREE",
               "TAGS", "SEEN"]
    for column in columns:
        table.add_column(column, no_wrap=column != "TAGS",
                         justify="right" if column in ("ID", "CORES", "MEM GB", "CPU%", "RUN") else "left")
    for node in nodes:
        free = node.get("free") or {}
        free_text = f"{free.get('cores', '-')}c {_gb(free.get('memory_mb'))}G"
        free_gpus = free.get("gpus")
        if any_gpus:
            free_text += f" {len(free_gpus) if isinstance(free_gpus, list) else (free_gpus or 0)}g"
        cpu = node.get("cpu_percent")
        row: list[Any] = [str(node.get("id")), node.get("name", ""), node_state(node), str(node.get("cores", "-")),
                          _gb(node.get("memory_mb"))]
        if any_gpus:
            row.append(str(len(node.get("gpus") or [])))
        row += ["-" if cpu is None else f"{float(cpu):.0f}", str(len(node.get("running") or [])), free_text,
                ",".join(node.get("tags") or []) or "-", short_time(node.get("last_seen"))]
        table.add_row(*row)
    return table


def node_view(node: dict[str, Any]) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("node", f"{node.get('id')}  {node.get('name', '')}")
    grid.add_row("state", Text.assemble(state_text(node.get("state")), " / ", state_text(node.get("admin_state"))))
    grid.add_row("host", f"{node.get('hostname', '-')} ({node.get('os', '-')})")
    grid.add_row("cores", str(node.get("cores", "-")))
    grid.add_row("memory", f"{_gb(node.get('memory_mb'))} GB")
    for gpu in node.get("gpus") or []:
        grid.add_row(f"gpu {gpu.get('index')}", f"{gpu.get('name', '')} {_gb(gpu.get('memory_mb'))} GB")
    grid.add_row("tags", ", ".join(node.get("tags") or []) or "-")
    grid.add_row("last seen", short_time(node.get("last_seen")))
    running = Table(title="running", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in ("ATTEMPT", "TASK", "JOB", "CORES", "GPUS"):
        running.add_column(column)
    for item in node.get("running") or []:
        running.add_row(str(item.get("attempt_id")), str(item.get("task_id")), str(item.get("job_id")),
                        str(item.get("cores", "-")), ",".join(str(g) for g in item.get("gpus") or []) or "-")
    return Group(grid, Text(""), running)


def templates_table(templates: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    table.add_column("TEMPLATE", no_wrap=True)
    table.add_column("DESCRIPTION")
    table.add_column("ARGS")
    for tpl in templates:
        props = (tpl.get("args") or {}).get("properties") or {}
        required = set((tpl.get("args") or {}).get("required") or [])
        args = ", ".join(f"{name}*" if name in required else name for name in props)
        table.add_row(tpl.get("name", ""), tpl.get("description", ""), args or "-")
    return table


def dry_run_view(answer: dict[str, Any]) -> Group:
    parts: list[Any] = []
    valid = bool(answer.get("valid"))
    verdict = "spec is valid" if valid else "spec is NOT valid" + (f": {answer['detail']}" if answer.get("detail") else "")
    parts.append(Text(verdict, style="green" if valid else "bold red"))
    for item in answer.get("errors") or []:
        if isinstance(item, dict):
            parts.append(Text(f"  error {item.get('field') or '-'}: {item.get('message', '')}", style="red"))
        else:
            parts.append(Text(f"  error: {item}", style="red"))
    for item in answer.get("warnings") or []:
        message = item if isinstance(item, str) else f"{item.get('field') or '-'}: {item.get('message', '')}"
        parts.append(Text(f"  warning: {message}", style="yellow"))
    tasks = answer.get("tasks") or []
    if tasks:
        table = Table(caption=f"{len(tasks)} tasks", caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
        for column in ("LAYER", "#", "FRAMES", "COMMAND"):
            table.add_column(column, no_wrap=column != "COMMAND")
        for task in tasks:
            argv = task.get("argv") or []
            command = argv[0] if task.get("shell") and argv else shlex.join(argv)
            table.add_row(str(task.get("layer", "")), str(task.get("index", "")), str(task.get("frames", "")),
                          Text(command))
        parts.append(table)
    return Group(*parts)


def _gb(mb: Any) -> str:
    try:
        return f"{float(mb) / 1024:.1f}"
    except (TypeError, ValueError):
        return "-"
