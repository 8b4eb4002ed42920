"""Job commands: submit, list, steer (`job`, `why` and `wait` read jobs: `cli/watch.py`). Each is a thin shell
over `Thresher`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from thresher.cli.common import (
    JsonOpt,
    ServerOpt,
    TokenOpt,
    connect,
    console,
    emit_json,
    emit_listing,
    err,
    fail,
    refusal_line,
)
from thresher.cli.targets import JobArg, JobsArg, YesOpt, emit_for_words, resolve_job, resolve_jobs
from thresher.cli.views import (
    archived_kept,
    blocklist_table,
    dry_run_view,
    jobs_table,
    short_time,
    tasks_table,
    templates_table,
)
from thresher.client.api import Thresher
from thresher.client.http import ApiError
from thresher.client.people import People
from thresher.client.spec import command_job_spec, load_job_spec, parse_job_spec, parse_limit_uses
from thresher.model.states import FINAL_JOB_STATES, JobState
from thresher.wire.common import FieldError
from thresher.wire.jobs import DryRun, Job, Submitted, TaskDetail


def submit(
    file: Annotated[Path, typer.Argument(help="Job spec file, YAML or JSON ('-' reads stdin).",
                                         show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and show the tasks; submit nothing.")] = False,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Submit a job spec file; print the new job's id."""
    spec = parse_job_spec(sys.stdin.read(), "<stdin>") if str(file) == "-" else load_job_spec(file)
    with connect(server, token) as client:
        answer = _submit(client, spec, dry_run)
    if dry_run:
        _print_dry_run(answer, json_out)
    else:
        _print_submitted(answer, json_out)


def _submit(client: Thresher, spec: dict[str, Any], dry_run: bool) -> Job | DryRun:
    """Submit, or check with a dry run. A dry run's answer for a spec the server refuses (422) is the
    verdict the user asked for, `{"valid": false, "detail", "errors": [...]}`, printed like a valid one."""
    try:
        return client.submit(spec, dry_run=True) if dry_run else client.submit(spec)
    except ApiError as exc:
        if not dry_run or exc.status != 422:
            raise
        return DryRun(valid=False, detail=exc.detail, errors=[FieldError.model_validate(e) for e in exc.errors],
                      warnings=[], total_tasks=0, tasks=[])


def _print_dry_run(answer: Job | DryRun, json_out: bool) -> None:
    assert isinstance(answer, DryRun)
    if json_out:  # as the server answers a dry run: no nulls for what it does not say
        emit_json(answer.model_dump(mode="json", exclude_none=True))
    else:
        console.print(dry_run_view(answer))
    if not answer.valid:
        raise typer.Exit(1)


def _print_submitted(job: Job | DryRun, json_out: bool) -> None:
    """The new job's id on stdout and the spec's warnings on stderr, one a line in the words a dry run
    prints them (a script reading the id reads only the id); with `--json`, the job with its warnings."""
    assert isinstance(job, Submitted)
    if json_out:
        emit_json(job)
        return
    for warning in job.warnings:
        err(f"warning: {warning}")
    typer.echo(job.id)


def submit_cmd(
    ctx: typer.Context,
    argv: Annotated[list[str] | None, typer.Argument(
        metavar="-- COMMAND [ARG...]", show_default=False,
        help="The program and its arguments; {frame} {start} {end} {step} {frames} are filled in per task.")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Job name (default: program and frames)")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Project (show).")] = None,
    priority: Annotated[int | None, typer.Option("--priority", help="0-1000, higher first.")] = None,
    frames: Annotated[str, typer.Option("--frames", "-f", help="Frame spec, e.g. 1-100 or 1-100x5.")] = "1",
    chunk: Annotated[int, typer.Option("--chunk", "-c", min=1, help="Frames per task.")] = 1,
    cores: Annotated[int, typer.Option("--cores", min=1, help="Cores each task needs.")] = 1,
    memory: Annotated[str | None, typer.Option("--memory", help="Memory each task needs: MB or '4G'.")] = None,
    gpus: Annotated[int, typer.Option("--gpus", min=0, help="GPUs each task needs.")] = 0,
    tags: Annotated[str | None, typer.Option("--tags", help="Node tags required, comma separated.")] = None,
    folder: Annotated[str | None, typer.Option("--folder", help="Folder of the project it goes into.")] = None,
    pools: Annotated[str | None, typer.Option("--pools", help="Pools it may run in, comma separated.")] = None,
    limit_uses: Annotated[list[str] | None, typer.Option(
        "--limit", help="A licence limit each task holds, as nuke or nuke=2; repeatable.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Service whose defaults it takes.")] = None,
    retries: Annotated[int | None, typer.Option("--retries", min=0, help="Tries after a failure.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds before a task is killed.")] = None,
    output: Annotated[list[str] | None, typer.Option(
        "--output", "-o", help="A file each task must write (#### = frame); repeatable.")] = None,
    cwd: Annotated[str | None, typer.Option("--cwd", help="Working folder of the task on the node.")] = None,
    shell: Annotated[bool, typer.Option("--shell", help="Run the words as one /bin/sh command line.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and show the tasks; submit nothing.")] = False,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Submit a one-layer job that runs a command for each chunk of frames; print its id.

    Example: thresher submit-cmd --frames 1-100 --chunk 10 -- blender -b shot.blend -s {start} -e {end} -a
    """
    words = list(argv or []) + list(ctx.args)
    if not words:
        raise typer.BadParameter("give the command to run after '--'", param_hint="COMMAND")
    if words[0].startswith("-"):
        # An option we do not know, not a program: refuse rather than run `--typo` on the farm.
        raise typer.BadParameter(f"no such option: {words[0]} (put the command after '--')",
                                 param_hint="COMMAND")
    try:
        uses = parse_limit_uses(limit_uses or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--limit") from None
    spec = command_job_spec(words, name=name, project=project, priority=priority, frames=frames, chunk=chunk,
                            cores=cores, memory=memory, gpus=gpus, tags=_words(tags), retries=retries,
                            timeout=timeout, shell=shell, outputs=output, cwd=cwd, folder=folder,
                            pools=_words(pools), limits=uses, service=service)
    with connect(server, token) as client:
        answer = _submit(client, spec, dry_run)
    if dry_run:
        _print_dry_run(answer, json_out)
    else:
        _print_submitted(answer, json_out)


def _words(text: str | None) -> list[str] | None:
    """A comma-separated option as its words (None when not given)."""
    return [word.strip() for word in text.split(",") if word.strip()] if text else None


def jobs(
    state: Annotated[str | None, typer.Option("--state", help="Only jobs in this state (several: comma separated); "
                                                             "paused includes jobs paused while their tasks "
                                                             "still run ('running (paused)').")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only jobs of this project.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only jobs this user owns.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only your jobs: the logged-in user's (with the admin "
                                                      "token, this account's).")] = False,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Name contains this.")] = None,
    folder: Annotated[str | None, typer.Option("--folder", help="Only jobs in a folder of this name.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many (the server's page "
                                                                    "size by default; the total is printed).")] = None,
    offset: Annotated[int | None, typer.Option("--offset", min=0, help="Skip this many first.")] = None,
    sort: Annotated[str | None, typer.Option("--sort", help="id, priority, name or submitted; a leading - "
                                                            "reverses it (default -id: newest first).")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="The archived jobs (only they).")] = False,
    sequence: Annotated[str | None, typer.Option("--sequence", help="Only jobs of this sequence.")] = None,
    shot: Annotated[str | None, typer.Option("--shot", help="Only jobs of this shot.")] = None,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """List jobs, newest first by default."""
    with connect(server, token) as client:
        if mine:
            if owner is not None:
                raise typer.BadParameter("give --mine or --owner, not both", param_hint="--mine")
            owner = client.my_name()
        answer = client.jobs(state=state, project=project, owner=owner, name=name, limit=limit, offset=offset,
                             sort=sort or "-id", folder=folder, archived=archived or None, sequence=sequence,
                             shot=shot)
        if not answer.total:
            _known_filters(client, project, owner, folder)
    if json_out:
        emit_json(answer)
    else:
        console.print(jobs_table(answer))


def _known_filters(client: Thresher, project: str | None, owner: str | None, folder: str | None) -> None:
    """An empty list for a misspelt `--project`, `--owner` or `--folder` says so (exit 1): it read as a
    project, user or folder with no jobs. Only an admin may read users (`user.manage`): for anyone else
    an owner is not checked."""
    if project is not None:
        try:
            client.project(project)
        except ApiError as exc:
            if exc.status != 404:
                raise
            fail(f"no project named {project!r} (thresher project list shows them)")
    if owner is not None:
        try:
            People(client.http).user(owner)
        except ApiError as exc:
            if exc.status == 404:
                fail(f"no user named {owner!r} (thresher user list shows them)")
            if exc.status != 403:
                raise
    if folder is not None and not any(f.name == folder for p in client.projects() for f in p.folders):
        fail(f"no project has a folder named {folder!r} (thresher project list shows them)")


def blocklist(
    job_id: JobArg,
    clear: Annotated[bool, typer.Option("--clear", help="Let the nodes take the job's tasks again "
                                                        "(with --node: that node only).")] = False,
    node: Annotated[str | None, typer.Option("--node", help="Only this node (name or id).")] = None,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show the nodes that failed a job's attempts and which it keeps out; --clear lets them back."""
    with connect(server, token) as client:
        one = resolve_job(client, job_id)
        answer = client.clear_blocklist(one, node) if clear else client.blocklist(one)
    if node is not None and not clear:
        answer = answer.model_copy(update={"items": [e for e in answer.items if node in (e.node, str(e.node_id))]})
    if json_out:
        emit_json(answer)
    else:
        console.print(blocklist_table(answer))


def tasks(
    job_id: JobArg,
    layer: Annotated[str | None, typer.Option("--layer", "-l", help="Only this layer.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only tasks in this state.")] = None,
    frame: Annotated[int | None, typer.Option("--frame", help="Only the tasks that render this frame.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many (the server's page "
                                                                    "size by default; the total is printed).")] = None,
    offset: Annotated[int | None, typer.Option("--offset", min=0, help="Skip this many first.")] = None,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """List the tasks of a job."""
    with connect(server, token) as client:
        one = resolve_job(client, job_id)
        answer = client.tasks(one, layer=layer, state=state, limit=limit, offset=offset, frame=frame)
        # an archived job has no task rows left: say why the list is empty, or it reads as a lost job
        archived = client.job(one) if not answer.total else None
    if archived is not None and archived.archived_at:
        err(f"job {one} was archived at {short_time(archived.archived_at)}: its tasks, attempts and logs were "
            f"deleted{archived_kept(archived)}")
    if json_out:
        emit_json(answer)
    else:
        console.print(tasks_table(answer))


def _job_action(action: str, words: list[str], yes: bool, server: str | None, token: str | None,
                json_out: bool, **kwargs: Any) -> None:
    """Do `action` to each job the words name (ids, names, globs: cli/targets.py). A job the server refuses
    is reported and the others still done; the exit code is 1 if any was refused."""
    answers: list[Job] = []
    refused = False
    with connect(server, token) as client:
        for job_id in resolve_jobs(client, words, yes):
            try:
                answers.append(getattr(client, action)(job_id, **kwargs))
            except ApiError as exc:
                refused = True
                err(refusal_line("job", job_id, exc))
    if json_out:
        emit_for_words(words, answers)
    else:
        for answer in answers:
            _print_job_result(answer, False, kwargs.get("layer"))
    if refused:
        raise typer.Exit(1)


def _print_job_result(job: Job, json_out: bool, layer: str | None = None) -> None:
    """"job 12: running, priority 50"; a paused job that still runs says "(paused)", a finished one not
    (the pause no longer matters); a layer's action says what the layer is now."""
    if json_out:
        emit_json(job)
        return
    paused = " (paused)" if job.paused and job.state not in (JobState.PAUSED, *FINAL_JOB_STATES) else ""
    line = f"job {job.id}: {job.state}{paused}, priority {job.priority}"
    shown = next((part for part in job.layers if part.name == layer), None) if layer else None
    if shown is not None:
        held = " (paused)" if shown.paused and shown.state != JobState.PAUSED else ""
        line = f"job {job.id} layer {shown.name}: {shown.state}{held}; job {job.state}{paused}"
    typer.echo(line)


LayerOpt = Annotated[str | None, typer.Option("--layer", "-l", help="Only this layer of each job.")]


def _act(verb: str, job_ids: list[str], layer: str | None, yes: bool, server: str | None, token: str | None,
         json_out: bool) -> None:
    if layer is None:
        _job_action(verb, job_ids, yes, server, token, json_out)
    else:  # one layer's tasks (`POST /jobs/{id}/layers/{name}/{verb}`)
        _job_action("steer_layer", job_ids, yes, server, token, json_out, layer=layer, verb=verb)


def kill(job_ids: JobsArg, layer: LayerOpt = None, yes: YesOpt = False, json_out: JsonOpt = False,
         server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Kill jobs (or one layer of each): running tasks are stopped, nothing more is started."""
    _act("kill", job_ids, layer, yes, server, token, json_out)


def pause(job_ids: JobsArg, layer: LayerOpt = None, yes: YesOpt = False, json_out: JsonOpt = False,
          server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Pause jobs (or one layer of each): running tasks finish, no new task starts."""
    _act("pause", job_ids, layer, yes, server, token, json_out)


def resume(job_ids: JobsArg, layer: LayerOpt = None, yes: YesOpt = False, json_out: JsonOpt = False,
           server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Resume paused jobs (or one paused layer of each)."""
    _act("resume", job_ids, layer, yes, server, token, json_out)


def retry(
    job_ids: JobsArg,
    task: Annotated[list[int] | None, typer.Option("--task", help="Task id to retry; repeatable (one job).")] = None,
    layer: LayerOpt = None,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Retry jobs' failed and killed tasks, or only the given ones."""
    if task and len(job_ids) > 1:
        raise typer.BadParameter("--task goes with one job", param_hint="--task")
    if task and layer:
        raise typer.BadParameter("give --task or --layer, not both", param_hint="--layer")
    if layer:
        return _act("retry", job_ids, layer, yes, server, token, json_out)
    _job_action("retry", job_ids, yes, server, token, json_out, task_ids=task or None)


def release(
    job_id: JobArg,
    layer: Annotated[str | None, typer.Argument(metavar="LAYER", help="One layer; every held layer when left out.",
                                                show_default=False)] = None,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Let a job's tasks held behind scout frames go (a layer's `scout`, see `thresher job`)."""
    with connect(server, token) as client:
        answer = client.release(resolve_job(client, job_id), layer)
    if json_out:
        emit_json(answer)
    else:
        typer.echo(f"job {answer.job_id}: released {', '.join(answer.layers)}")


def scout(
    job_id: JobArg,
    layer: Annotated[str, typer.Argument(metavar="LAYER", help="The layer.", show_default=False)],
    frames: Annotated[str, typer.Argument(metavar="SCOUT", help="fml:N, auto:N or a list like 1,50,100.",
                                          show_default=False)],
    manual: Annotated[bool, typer.Option("--manual", help="Hold the rest until `thresher release`.")] = False,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Pick a layer's scout frames again, before any of its tasks started."""
    with connect(server, token) as client:
        answer = client.set_scout(resolve_job(client, job_id), layer, frames, "manual" if manual else "auto")
    _print_job_result(answer, json_out)


def priority(
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="Job id, name or glob.", show_default=False)],
    value: Annotated[int, typer.Argument(metavar="N", help="New priority, 0-1000.", show_default=False)],
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Change the priority of a job (or of every job a glob matches, with --yes)."""
    _job_action("set_priority", [job_id], yes, server, token, json_out, priority=value)


TaskArg = Annotated[list[int], typer.Argument(metavar="TASK", help="Task ids.", show_default=False)]


def _task_action(action: str, task_ids: list[int], server: str | None, token: str | None, json_out: bool) -> None:
    """Do `action` to each task in turn; one the server refuses is reported, the others still done."""
    answers: list[TaskDetail] = []
    refused = False
    with connect(server, token) as client:
        for task_id in dict.fromkeys(task_ids):
            try:
                answers.append(getattr(client, action)(task_id))
            except ApiError as exc:
                refused = True
                err(refusal_line("task", task_id, exc))
    if json_out:
        emit_json(answers[0] if len(task_ids) == 1 and answers else answers)
    else:
        for answer in answers:
            typer.echo(f"task {answer.id}: {answer.state}")
    if refused:
        raise typer.Exit(1)


def skip(task_id: TaskArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Mark tasks done by hand (their dependents may start)."""
    _task_action("skip_task", task_id, server, token, json_out)


def retry_task(task_id: TaskArg, json_out: JsonOpt = False, server: ServerOpt = None,
               token: TokenOpt = None) -> None:
    """Run tasks again."""
    _task_action("retry_task", task_id, server, token, json_out)


def kill_task(task_id: TaskArg, json_out: JsonOpt = False, server: ServerOpt = None,
              token: TokenOpt = None) -> None:
    """Kill tasks."""
    _task_action("kill_task", task_id, server, token, json_out)


def templates(json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List the job templates the server knows."""
    with connect(server, token) as client:
        answer = client.all_templates()
    if json_out:
        emit_listing(answer)
    else:
        console.print(templates_table(answer))
