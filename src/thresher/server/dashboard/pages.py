"""The web dashboard's pages, the task grid and thumbnails; the router that serves the whole dashboard.

Pages are server-rendered templates (dashboard/render.py). A small script (web/static/app.js) listens
to `/events` (dashboard/stream.py) and repaints what the events carry (task grid cells, progress
counts); it re-fetches a page's live part (`?fragment=1`) soon only when what the page shows changed
state, and otherwise at a slow pace. Overview and node pages render from the broadcaster's shared
summary, and the task grid from its shared snapshot of the job, so refreshing them costs no database
query of their own. Every action the page offers goes through the JSON API (`/api/v1/...`),
authenticated by the session cookie plus a CSRF header. Every route here needs a logged-in session
(dashboard/access.py); logging in is dashboard/login.py.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection

from thresher.model import estimate
from thresher.model.permissions import decide
from thresher.model.states import LIVE_ATTEMPT_STATES, JobState
from thresher.model.steering_rule import job_actions
from thresher.server import commands, dependencies, enrollment, views
from thresher.server.clock import iso, utcnow
from thresher.server.context import ctx
from thresher.server.dashboard import audit, dep_graph, job_groups, login, logs, node_list, projects, stream
from thresher.server.dashboard import users as users_page
from thresher.server.dashboard.access import DashboardRoute, DataSession, PageSession
from thresher.server.dashboard.render import JOB_STATES, STATIC_DIR, WEB, render
from thresher.server.dashboard.session import Session
from thresher.server.dashboard.thumbs import (
    TaskOutputs,
    ThumbnailCache,
    is_image,
    outputs_of,
    stitched_images,
    task_outputs,
)
from thresher.server.db.queries import dashboard as q
from thresher.server.errors import ApiProblem, NotFound

__all__ = ["STATIC_DIR", "WEB", "router"]

PAGE_SIZE = 50              # jobs per page of the jobs list
PREVIEWS = 8                # thumbnails of the newest output on a job page
FILES_LISTED = 200          # declared output files a task page lists
RECENT_ATTEMPTS = 40        # attempts a node page lists
RECENT_FAILURES = 20        # ... and failures
BUSY_LISTED = 20            # busy nodes the overview lists
JOB_SORT_CHOICES = [("-id", "newest"), ("id", "oldest"), ("-priority", "priority ↓"), ("priority", "priority ↑"),
                    ("name", "name A–Z"), ("-name", "name Z–A")]

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)
router.include_router(login.router)
router.include_router(stream.router)
router.include_router(projects.router)
router.include_router(logs.router)
router.include_router(audit.router)  # /audit (wranglers and admins)
router.include_router(users_page.router)  # /users (admins)


class Unsupported(ApiProblem):
    status = 415


_thumbs = ThumbnailCache()


def _missing(request: Request, session: Session, exc: NotFound) -> Response:
    return render(request, "missing.html", session, status=404, message=exc.detail, title="Not found")


@router.get("/")
def overview(request: Request, session: PageSession) -> Response:
    server = ctx(request)
    summary = server.events.current_summary(server)
    fpm = server.events.frames_per_minute(server)
    busy = [n for n in summary["node_list"] if n["running"]]
    return render(request, "overview.html", session, summary=summary, fpm=fpm, fpm_max=max(fpm + [1]),
                  fpm_last=sum(fpm[-5:]) / 5, busy=busy[:BUSY_LISTED], busy_more=max(0, len(busy) - BUSY_LISTED),
                  title="Overview")


def _job_filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    sort = params.get("sort") or "-id"
    if sort not in views.JOB_SORTS:
        sort = "-id"
    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    state = params.get("state") or ""
    if state not in JOB_STATES:  # an unknown state filters nothing, like an unknown sort
        state = ""
    return {"state": state, "project": params.get("project") or "", "folder": params.get("folder") or "",
            "owner": params.get("owner") or "", "name": params.get("name") or "", "sort": sort, "page": page,
            "archived": params.get("archived") == "true",
            "sequence": params.get("sequence") or "", "shot": params.get("shot") or "",
            "group": params.get("group") if params.get("group") in job_groups.GROUPS else ""}  # ?archived=true: the archived jobs (server/retention.py)


@router.get("/jobs")
def jobs_page(request: Request, session: PageSession) -> Response:
    f = _job_filters(request)
    query = dict(state=f["state"] or None, project=f["project"] or None, owner=f["owner"] or None,
                 name=f["name"] or None, limit=PAGE_SIZE, sort=f["sort"], folder=f["folder"] or None,
                 archived=f["archived"], sequence=f["sequence"] or None, shot=f["shot"] or None)
    group = f["group"] or None
    with ctx(request).db.read() as conn:
        listing = views.list_jobs(conn, offset=(f["page"] - 1) * PAGE_SIZE, group=group, **query).model_dump(mode="json")
        pages = max(1, -(-listing["total"] // PAGE_SIZE))
        if f["page"] > pages:  # a page past the end (an old link, jobs that finished): show the last one
            f["page"] = pages
            listing = views.list_jobs(conn, offset=(pages - 1) * PAGE_SIZE, group=group, **query).model_dump(mode="json")
        groups = job_groups.grouped(listing["items"], group, job_groups.totals(conn, group, {
            k: v for k, v in query.items() if k not in ("limit", "sort")})) if group else None

    def link(**change: Any) -> str:
        merged = {**f, **change}
        parts = [f"{k}={quote(str(v).lower() if v is True else str(v), safe='')}" for k, v in merged.items()
                 if v and not (k == "page" and v == 1)
                 and not (k == "sort" and v == "-id")]
        return "/jobs" + ("?" + "&".join(parts) if parts else "")

    return render(request, "jobs.html", session, listing=listing, f=f, pages=pages, link=link, title="Jobs",
                  sorts=JOB_SORT_CHOICES, groups=groups, group_choices=job_groups.GROUPS)


def _previews(conn: Connection, job_id: int) -> list[dict[str, Any]]:
    """The newest finished tasks' image outputs (first declared image of each that its attempt wrote)."""
    rows = conn.execute(q.NEWEST_SUCCEEDED_TASKS, {"job_id": job_id, "limit": PREVIEWS}).all()
    out = []
    for row in sorted(rows, key=lambda r: r.id):
        outputs = TaskOutputs(outputs_of(row), row.attempt_started_at, row.attempt_ended_at)
        images = [(i, p) for i, p in enumerate(outputs.paths) if is_image(p) and outputs.written_by_attempt(p)]
        if images:
            out.append({"task_id": row.id, "index": images[0][0], "frames": row.frames, "layer": row.layer,
                        "name": Path(images[0][1]).name})
    return out


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: int, session: PageSession) -> Response:
    with ctx(request).db.read() as conn:
        try:
            job = views.get_job(conn, job_id).model_dump(mode="json")
        except NotFound as exc:
            return _missing(request, session, exc)
        previews = _previews(conn, job_id)
        deps = dependencies.view(conn, job_id, job["pending"]).model_dump(mode="json")
        # why it failed, as `thresher job` says it (model/failure_summary.py), above the grid
        failed = (views.job_failures(conn, job_id).model_dump(mode="json")
                  if job["failures"] or job["counts"]["failed"] or job["state"] in ("failed", "blocked") else None)
    # the estimates in words, as the CLI says them (model/estimate.py)
    eta_job, eta_layers = _eta_words(job["estimate"]), {layer["name"]: _eta_words(layer["estimate"])
                                                         for layer in job["layers"]}
    graph = dep_graph.layout(job_id, deps["waits_for"] + deps["waited_by"],
                             {layer["name"]: layer["state"] for layer in job["layers"]})
    can = job_actions(job_id, JobState(job["state"]), paused=job["paused"], counts=job["counts"], urgent=job["urgent"],
                      archived=job["archived_at"] is not None)
    return render(request, "job.html", session, job=job, previews=previews, deps=deps, graph=graph, failed=failed,
                  eta_job=eta_job, eta_layers=eta_layers, job_can=can,
                  spec_text=json.dumps(job["spec"], indent=2, ensure_ascii=False), title=f"Job {job_id}")


def _eta_words(est: dict[str, Any] | None) -> dict[str, str]:
    if est is None:
        return {"text": "", "task": "–", "range": ""}
    shown = SimpleNamespace(**est)
    return {"text": estimate.words(shown), "task": estimate.task_words(shown), "range": estimate.task_range_words(shown)}


@router.get("/ui/jobs/{job_id}/grid")
def job_grid(request: Request, job_id: int, session: DataSession) -> Response:
    """Every task of a job in compact columns, for the canvas grid (10,000 tasks in ~200 KB).

    Served from the broadcaster's shared snapshot of the job (server/events/grids.py), so the tabs on
    a job page cost one database read between them; after this first load, events carry only the
    cells that changed, tagged with the snapshot `version` they apply to."""
    server = ctx(request)
    grid = server.events.grid(server, job_id)
    if grid is None:
        return JSONResponse({"detail": f"no job with id {job_id}", "errors": []}, status_code=404)
    return JSONResponse(grid, headers={"Cache-Control": "no-store"})


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: int, session: PageSession) -> Response:
    with ctx(request).db.read() as conn:
        try:
            task = views.get_task(conn, task_id).model_dump(mode="json")
        except NotFound as exc:
            return _missing(request, session, exc)
        job = conn.execute(q.JOB_BRIEF, {"job_id": task["job_id"]}).first()
        outputs = task_outputs(conn, task_id)
        stitched = stitched_images(conn, task)
        command = _command(conn, task["attempts"][-1]["id"]) if task["attempts"] else None
    files = []
    for i, path in enumerate(outputs.paths[:FILES_LISTED]):
        try:
            exists = Path(path).is_file()
        except OSError:
            exists = False
        # a file another job (or an older render) wrote there is listed, never previewed as this task's
        ours = exists and outputs.written_by_attempt(path)
        files.append({"index": i, "path": path, "exists": exists, "ours": ours, "image": is_image(path) and ours})
    live = next((a for a in reversed(task["attempts"]) if a["state"] in LIVE_ATTEMPT_STATES), None)
    return render(request, "task.html", session, task=task, job=job, files=files, command=command,
                  more_files=max(0, len(outputs.paths) - FILES_LISTED), live_attempt=live, title=f"Task {task_id}",
                  stitched=stitched)


def _command(conn: Connection, attempt_id: int) -> dict[str, Any]:
    """What the latest attempt ran (`server/commands.py`); a template that cannot build it says why."""
    try:
        shown = commands.attempt_command(conn, attempt_id).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - shown on the page, as dispatch reports it on the attempt
        return {"error": f"cannot build the command: {exc}"}
    argv = ["/bin/sh", "-c", *shown["argv"]] if shown["shell"] else shown["argv"]
    return {**shown, "line": shlex.join(argv)}  # as a shell would take it, to copy and run by hand


@router.get("/nodes")
def nodes_page(request: Request, session: PageSession) -> Response:
    server = ctx(request)
    summary = server.events.current_summary(server)
    f = node_list.NodeFilter.of(request.query_params)
    shown = node_list.page_of(summary["node_list"], f)
    history = {n["id"]: server.events.history(n["id"]) for n in shown.nodes}
    return render(request, "nodes.html", session, summary=summary, node_list=shown.nodes, history=history,
                  shown=shown, f=f, enroll_tokens=_enroll_tokens(request, session), title="Nodes")


def _enroll_tokens(request: Request, session: Session) -> list[dict[str, Any]] | None:
    """The enrollment tokens an admin's nodes page lists (`server/enrollment.py`); None for anyone else."""
    caller = session.caller
    if decide(caller.who, "enroll.manage", read_only=caller.read_only) is not None:
        return None
    with ctx(request).db.read() as conn:
        return [t.model_dump(mode="json") for t in enrollment.list_tokens(conn, utcnow())]


@router.get("/nodes/{ident}")
def node_page(request: Request, ident: str, session: PageSession) -> Response:
    server = ctx(request)
    with server.db.read() as conn:
        try:
            node = views.get_node(conn, ident).model_dump(mode="json")
        except NotFound as exc:
            return _missing(request, session, exc)
        recent = conn.execute(q.NODE_RECENT_ATTEMPTS, {"node_id": node["id"], "limit": RECENT_ATTEMPTS}).all()
        failures = conn.execute(q.NODE_RECENT_FAILURES, {"node_id": node["id"], "limit": RECENT_FAILURES}).all()
    return render(request, "node.html", session, node=node, recent=[_attempt_row(r) for r in recent],
                  failures=[_attempt_row(r) for r in failures], history=server.events.history(node["id"]),
                  title=f"Node {node['name']}")


def _attempt_row(r: Any) -> dict[str, Any]:
    return {"id": r.id, "task_id": r.task_id, "job_id": r.job_id, "job_name": r.job_name, "layer": r.layer_name,
            "frames": r.frames, "number": r.number, "state": r.state, "started_at": iso(r.started_at),
            "ended_at": iso(r.ended_at), "exit_code": r.exit_code, "cpu_s": r.cpu_s, "peak_rss_mb": r.peak_rss_mb,
            "reason": r.reason}


@router.get("/ui/thumb/{task_id}/{index}")
def thumbnail(request: Request, task_id: int, index: int, session: DataSession) -> Response:
    """A scaled-down image of one of a task's declared outputs (dashboard/thumbs.py)."""
    with ctx(request).db.read() as conn:
        outputs = task_outputs(conn, task_id)
    if not 0 <= index < len(outputs.paths):
        raise NotFound(f"task {task_id} declares no output number {index}")
    path = outputs.paths[index]
    if not is_image(path):
        raise Unsupported(f"{Path(path).name} is not an image the dashboard previews")
    if Path(path).exists() and not outputs.written_by_attempt(path):
        raise NotFound(f"{Path(path).name} was not written by this task's latest attempt (modified outside its time)")
    try:
        data, media = _thumbs.get(path)
    except FileNotFoundError:
        raise NotFound(f"{Path(path).name} has not been written (yet)") from None
    except ValueError as exc:
        raise Unsupported(str(exc)) from None
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=30"})
