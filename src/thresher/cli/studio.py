"""Studio scheduling commands: projects (shows) and their folders and stakes in pools, pools and which
node serves which, licence limits, urgent jobs and moves between folders. Thin over the client; every
listing and change prints the server's answer with `--json`.

A cap option takes a number, or `none` to remove the cap (a patch changes only the options given).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import typer
from rich.table import Table

from thresher.cli.common import (
    JsonOpt,
    ServerOpt,
    ThresherGroup,
    TokenOpt,
    connect,
    console,
    emit_json,
    emit_listing,
    fail,
)
from thresher.cli.targets import JobArg, resolve_job
from thresher.cli.views import counted, listing_table, nodes_table
from thresher.wire.jobs import Job
from thresher.wire.studio import Limit, Pool, PoolDetail, Project

project_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True,
                          help="Projects (shows): fair-share weight, farm-wide caps, folders and stakes.")
folder_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True, help="Folders of a project's jobs.")
pool_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True, help="Pools of nodes and what runs in them.")
limit_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True, help="Licence limits and the units in use.")

ProjectArg = Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.", show_default=False)]
FolderArg = Annotated[str, typer.Argument(metavar="FOLDER", help="Folder name.", show_default=False)]
PoolArg = Annotated[str, typer.Argument(metavar="POOL", help="Pool name.", show_default=False)]
LimitArg = Annotated[str, typer.Argument(metavar="LIMIT", help="Limit name.", show_default=False)]
CapOpt = Annotated[str | None, typer.Option(help="A number, or `none` for no cap.", show_default=False)]
WeightOpt = Annotated[float | None, typer.Option(help="Fair-share weight (>= 0).", show_default=False)]
PriorityOpt = Annotated[int | None, typer.Option(help="Order among the project's folders (higher first).",
                                                 show_default=False)]


def _cap(option: str, value: str | None) -> tuple[int | None, bool]:
    """(number, cleared) of a cap option: a number, `none` (the cap removed), or not given."""
    if value is None:
        return None, False
    if value.strip().lower() == "none":
        return None, True
    try:
        return int(value), False
    except ValueError:
        fail(f"{option}: give a number or `none`, not {value!r}", 2)


def _caps(**options: str | None) -> tuple[dict[str, int | None], tuple[str, ...]]:
    values: dict[str, int | None] = {}
    cleared: list[str] = []
    for name, raw in options.items():
        number, clear = _cap("--" + name.replace("_", "-"), raw)
        values[name] = number
        if clear:
            cleared.append(name)
    return values, tuple(cleared)


def _show(value: int | float | None) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _out(answer: Any, json_out: bool, text: str) -> None:
    if json_out:
        emit_json(answer)
    else:
        typer.echo(text)


def _table(*columns: str, **options: Any) -> Table:
    return listing_table(*columns, **options)


def projects_table(projects: list[Project]) -> Table:
    table = _table("PROJECT", "WEIGHT", "CORES", "MAX CORES", "GPUS", "MAX GPUS", "FOLDERS",
                   **counted(len(projects), "project"))
    for p in projects:
        table.add_row(p.name, _show(p.weight), str(p.running_cores), _show(p.max_cores), str(p.running_gpus),
                      _show(p.max_gpus), str(len(p.folders)))
    return table


def project_view(p: Project) -> Table:
    table = _table("POOL", "GUARANTEED", "MAX", "RUNNING", "GPUS GUAR.", "MAX GPUS", "RUNNING GPUS")
    for s in p.stakes:
        table.add_row(s.pool, str(s.guaranteed_cores), _show(s.max_cores), str(s.running_cores),
                      str(s.guaranteed_gpus), _show(s.max_gpus), str(s.running_gpus))
    console.print(f"project {p.name}: weight {_show(p.weight)}, running {p.running_cores} cores "
                  f"(max {_show(p.max_cores)}), {p.running_gpus} GPUs (max {_show(p.max_gpus)})")
    console.print(table)
    folders = _table("FOLDER", "PRIORITY", "MIN CORES", "MAX CORES", "RUNNING")
    for f in p.folders:
        folders.add_row(f.name, str(f.priority), _show(f.min_cores), _show(f.max_cores), str(f.running_cores))
    return folders


# ---------------------------------------------------------------- projects

@project_app.command("add")
def project_add(name: ProjectArg, weight: Annotated[float, typer.Option(help="Fair-share weight (>= 0).")] = 1.0,
                max_cores: CapOpt = None, max_gpus: CapOpt = None, json_out: JsonOpt = False,
                server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Add a project."""
    caps, _ = _caps(max_cores=max_cores, max_gpus=max_gpus)
    with connect(server, token) as client:
        answer = client.add_project(name, weight, **caps)
    _out(answer, json_out, f"project {answer.name} added (weight {_show(answer.weight)})")


@project_app.command("list")
def project_list(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List projects with what they run."""
    with connect(server, token) as client:
        answer = client.projects()
    if json_out:
        emit_listing(answer)
    else:
        console.print(projects_table(answer))


@project_app.command("set")
def project_set(name: ProjectArg, weight: WeightOpt = None, max_cores: CapOpt = None, max_gpus: CapOpt = None,
                json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Change a project's weight or caps."""
    caps, cleared = _caps(max_cores=max_cores, max_gpus=max_gpus)
    with connect(server, token) as client:
        answer = client.set_project(name, weight, clear=cleared, **caps)
    _out(answer, json_out, f"project {answer.name}: weight {_show(answer.weight)}, max cores "
                           f"{_show(answer.max_cores)}, max GPUs {_show(answer.max_gpus)}")


@project_app.command("show")
def project_show(name: ProjectArg, json_out: JsonOpt = False, server: ServerOpt = None,
                 token: TokenOpt = None) -> None:
    """Show a project: its stakes per pool, its folders and its members."""
    from thresher.client.people import People

    with connect(server, token) as client:
        answer = client.project(name)
        members = People(client.http).members(name).members
    if json_out:
        emit_json({**answer.model_dump(mode="json"), "members": members})
    else:
        console.print(project_view(answer))
        console.print(f"members: {', '.join(members) if members else '- (anyone who may submit)'}")


@project_app.command("usage")
def project_usage(name: ProjectArg, minutes: Annotated[float, typer.Option(
        min=0, help="How far back (the server keeps `usage_history_keep_s`).")] = 60.0,
        json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """What a project ran over time: its own counter, per pool and per folder, as the server sampled them."""
    with connect(server, token) as client:
        answer = client.project_usage(name, since=datetime.now(timezone.utc) - timedelta(minutes=minutes))
    if json_out:
        emit_json(answer)
        return
    table = _table("KIND", "NAME", "SAMPLES", "CORES NOW", "PEAK CORES", "GPUS NOW", "PEAK GPUS")
    for series in answer.series:
        last = series.points[-1] if series.points else None
        table.add_row(series.kind, series.name, str(len(series.points)), str(last.cores if last else 0),
                      str(max((p.cores for p in series.points), default=0)), str(last.gpus if last else 0),
                      str(max((p.gpus for p in series.points), default=0)))
    console.print(f"project {answer.project}: the last {minutes:g} minutes, one sample every {answer.sample_s:g} s")
    console.print(table)


# ---------------------------------------------------------------- folders

@folder_app.command("add")
def folder_add(project: ProjectArg, folder: FolderArg, priority: Annotated[int, typer.Option(
                   help="Order among the project's folders (higher first).")] = 0,
               min_cores: CapOpt = None, max_cores: CapOpt = None, json_out: JsonOpt = False,
               server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Add a folder to a project."""
    caps, _ = _caps(min_cores=min_cores, max_cores=max_cores)
    with connect(server, token) as client:
        answer = client.add_folder(project, folder, priority, **caps)
    _out(answer, json_out, f"folder {folder} added to project {answer.name}")


@folder_app.command("set")
def folder_set(project: ProjectArg, folder: FolderArg, priority: PriorityOpt = None, min_cores: CapOpt = None,
               max_cores: CapOpt = None, json_out: JsonOpt = False, server: ServerOpt = None,
               token: TokenOpt = None) -> None:
    """Change a folder's priority, minimum or cap (its waiting tasks take the new priority)."""
    caps, cleared = _caps(min_cores=min_cores, max_cores=max_cores)
    with connect(server, token) as client:
        answer = client.set_folder(project, folder, priority, clear=cleared, **caps)
    _out(answer, json_out, f"folder {folder} of project {answer.name} changed")


def stake(project: ProjectArg, pool: PoolArg,
          guaranteed: Annotated[int, typer.Option(help="Cores guaranteed in the pool.")] = 0,
          max_cores: Annotated[str | None, typer.Option("--max", help="Cores at most in the pool, or `none`.",
                                                        show_default=False)] = None,
          guaranteed_gpus: Annotated[int, typer.Option(help="GPUs guaranteed in the pool.")] = 0,
          max_gpus: CapOpt = None, json_out: JsonOpt = False, server: ServerOpt = None,
          token: TokenOpt = None) -> None:
    """Set a project's stake in a pool: guaranteed cores and the most it may burst to."""
    caps, _ = _caps(max=max_cores, max_gpus=max_gpus)
    with connect(server, token) as client:
        answer = client.set_stake(project, pool, guaranteed, caps["max"], guaranteed_gpus, caps["max_gpus"])
    _out(answer, json_out, f"project {answer.name} in pool {pool}: {guaranteed} cores guaranteed, "
                           f"at most {_show(caps['max'])}")


# ---------------------------------------------------------------- pools and nodes

def pools_table(pools: list[Pool]) -> Table:
    table = _table("POOL", "NODES", "CORES", "RUNNING CORES", "RUNNING GPUS", **counted(len(pools), "pool"))
    for p in pools:
        table.add_row(p.name, str(p.nodes), str(p.cores), str(p.running_cores), str(p.running_gpus))
    return table


@pool_app.command("list")
def pool_list(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List pools: their nodes and what runs in them."""
    with connect(server, token) as client:
        answer = client.pools()
    if json_out:
        emit_listing(answer)
    else:
        console.print(pools_table(answer))


@pool_app.command("show")
def pool_show(name: PoolArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Show a pool and its nodes."""
    with connect(server, token) as client:
        answer: PoolDetail = client.pool(name)
    if json_out:
        emit_json(answer)
    else:
        console.print(pools_table([answer]))
        console.print(nodes_table(answer.members))


def node_pool(node: Annotated[str, typer.Argument(metavar="NODE", help="Node name or id.", show_default=False)],
              pool: PoolArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Move a node to a pool (made if new); it takes that pool's work from its next request on."""
    with connect(server, token) as client:
        answer = client.set_node_pool(node, pool)
    _out(answer, json_out, f"node {answer.name}: pool {answer.pool}")


# ---------------------------------------------------------------- limits

def limits_table(limits: list[Limit]) -> Table:
    table = _table("LIMIT", "IN USE", "MAX", "PER NODE", **counted(
        len(limits), "licence limit", "no licence limits yet: `thresher limit add NAME --max N` adds one"))
    for lim in limits:
        table.add_row(lim.name, str(lim.in_use), str(lim.max_total), _show(lim.max_per_node))
    return table


MaxTotalOpt = Annotated[int | None, typer.Option("--max", help="Units in use farm-wide at most.", show_default=False)]
PerNodeOpt = Annotated[str | None, typer.Option("--per-node", help="Units on one node at most, or `none`.",
                                                show_default=False)]


@limit_app.command("add")
def limit_add(name: LimitArg, max_total: MaxTotalOpt = None, per_node: PerNodeOpt = None, json_out: JsonOpt = False,
              server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Add a licence limit (`--max` units in use at most)."""
    if max_total is None:
        fail("--max is required: the units in use farm-wide at most", 2)
    caps, _ = _caps(per_node=per_node)
    with connect(server, token) as client:
        answer = client.add_limit(name, max_total, caps["per_node"])
    _out(answer, json_out, f"limit {answer.name} added: {answer.max_total} at most")


@limit_app.command("list")
def limit_list(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List licence limits and the units in use."""
    with connect(server, token) as client:
        answer = client.limits()
    if json_out:
        emit_listing(answer)
    else:
        console.print(limits_table(answer))


@limit_app.command("set")
def limit_set(name: LimitArg, max_total: MaxTotalOpt = None, per_node: PerNodeOpt = None, json_out: JsonOpt = False,
              server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Change a licence limit's totals."""
    caps, cleared = _caps(per_node=per_node)
    with connect(server, token) as client:
        answer = client.set_limit(name, max_total, caps["per_node"], clear=("max_per_node",) if cleared else ())
    _out(answer, json_out, f"limit {answer.name}: {answer.max_total} at most, {_show(answer.max_per_node)} per node")


def limit_rm(name: LimitArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Remove a licence limit (refused while in use or named by unfinished jobs)."""
    with connect(server, token) as client:
        answer = client.remove_limit(name)
    _out(answer, json_out, f"limit {answer.name} removed")


limit_app.command("remove")(limit_rm)  # as `service remove` and `node remove` say it
limit_app.command("rm", hidden=True)(limit_rm)


# ---------------------------------------------------------------- jobs

def urgent(job_id: JobArg, off: Annotated[bool, typer.Option("--off", help="No longer urgent.")] = False,
           json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Mark a job urgent: its tasks go ahead of fair share (within caps and limits)."""
    with connect(server, token) as client:
        answer: Job = client.set_urgent(resolve_job(client, job_id), not off)
    _out(answer, json_out, f"job {answer.id}: {'urgent' if answer.urgent else 'not urgent'}")


def move(job_id: JobArg, folder: FolderArg, json_out: JsonOpt = False, server: ServerOpt = None,
         token: TokenOpt = None) -> None:
    """Move a job to a folder of its project (made if new)."""
    with connect(server, token) as client:
        answer: Job = client.move(resolve_job(client, job_id), folder)
    _out(answer, json_out, f"job {answer.id}: folder {answer.folder}")
