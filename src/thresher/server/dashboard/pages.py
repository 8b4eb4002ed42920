"""The web dashboard's HTML routes: login, pages, page fragments, the task grid, thumbnails, /events.

Pages are server-rendered Jinja2 templates (autoescaped: every user-supplied text renders as text).
A small script (web/static/app.js) listens to `/events` and repaints what the events carry (task grid
cells, progress counts); it re-fetches a page's live part (`?fragment=1`) soon only when what the page
shows changed state, and otherwise at a slow pace. Overview and node pages render from the
broadcaster's shared summary, and the task grid from its shared snapshot of the job, so refreshing
them costs no database query of their own. Every action the page offers goes
through the JSON API (`/api/v1/...`), authenticated by the session cookie plus a CSRF header.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from thresher import __version__
from thresher.model.states import TASK_STATES, JobState
from thresher.server import views
from thresher.server.clock import iso, utcnow
from thresher.server.context import ServerContext, ctx
from thresher.server.dashboard.session import COOKIE, LIFETIME_S, Session, csrf_ok
from thresher.server.dashboard.thumbs import ThumbnailCache, is_image, outputs_of, task_outputs
from thresher.server.db.tables import attempts, jobs, layers, tasks
from thresher.server.errors import ApiProblem, NotFound

WEB = Path(__file__).resolve().parent.parent.parent / "web"
STATIC_DIR = WEB / "static"
LOGIN_COOKIE = "thresher_login"
JOB_STATES = ["waiting", "queued", "running", "paused", "succeeded", "failed", "killed"]
PAGE_SIZE = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


class Unsupported(ApiProblem):
    status = 415

_thumbs = ThumbnailCache()


# ---------------------------------------------------------------------------------------------
# Templates


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else ""


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else utcnow()
    seconds = max(0, int((finish - begin).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _mb(value: float | int | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def _spark(samples: list[tuple[float, Any, Any]], field: int, maximum: float, width: int = 120,
           height: int = 28, span_s: float = 3600.0) -> str:
    """An SVG polyline's points for the last hour of one field of a node's samples, on a time axis
    (numbers only, so safe to inline). A young history is a short line at the right end."""
    now = time.time()
    points = []
    for sample in samples:
        value = sample[field]
        if value is None or now - sample[0] > span_s:
            continue
        x = width * (1 - (now - sample[0]) / span_s)
        y = height - 1 - (min(max(float(value), 0.0), maximum) / maximum) * (height - 2) if maximum else height - 1
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points) if len(points) > 1 else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(WEB / "templates")),
                          autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters.update(when=_when, mb=_mb)
_env.globals.update(duration=_duration, spark=_spark, plural=_plural, version=__version__, task_states=TASK_STATES,
                    job_states=JOB_STATES)


def _static_version() -> str:
    newest = max((p.stat().st_mtime for p in STATIC_DIR.iterdir()), default=0)
    return str(int(newest))


def render(request: Request, name: str, session: Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    fragment = request.query_params.get("fragment") == "1"
    html = _env.get_template(name).render(request=request, session=session, fragment=fragment,
                                          static_v=_static_version(), path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


# ---------------------------------------------------------------------------------------------
# Sessions


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def page_session(request: Request) -> Session | Response:
    session = ctx(request).sessions.check(ctx(request).db, request.cookies.get(COOKIE))
    if session is not None:
        return session
    if request.query_params.get("fragment") == "1":
        return JSONResponse({"detail": "log in again", "errors": []}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login")
def login_form(request: Request, next: str = "/", error: str | None = None) -> Response:  # noqa: A002
    nonce = secrets.token_urlsafe(18)
    response = render(request, "login.html", None, status=401 if error else 200, login_csrf=nonce,
                      next=_safe_next(next), error=error)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                        secure=_cookie_secure(request), path="/login")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    target = _safe_next(form.get("next"))
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not secrets.compare_digest(expected, form.get("csrf", "")):
        return login_form(request, next=target, error="The login form expired; please try again.")
    server = ctx(request)
    made = await run_in_threadpool(server.sessions.login, server.db, form.get("token", ""))
    if made is None:
        return login_form(request, next=target, error="That token is not a valid admin token.")
    cookie, _session = made
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=LIFETIME_S, httponly=True, samesite="strict",
                        secure=_cookie_secure(request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    session = ctx(request).sessions.check(ctx(request).db, request.cookies.get(COOKIE))
    if session is not None and not csrf_ok(session, form.get("csrf")):
        return JSONResponse({"detail": "missing or wrong CSRF token", "errors": []}, status_code=403)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---------------------------------------------------------------------------------------------
# Pages


@router.get("/")
def overview(request: Request) -> Response:
    session = page_session(request)
    if isinstance(session, Response):
        return session
    server = ctx(request)
    summary = server.events.current_summary(server)
    fpm = server.events.frames_per_minute(server)
    busy = [n for n in summary["node_list"] if n["running"]]
    return render(request, "overview.html", session, summary=summary, fpm=fpm, fpm_max=max(fpm + [1]),
                  fpm_last=sum(fpm[-5:]) / 5, busy=busy[:20], busy_more=max(0, len(busy) - 20), title="Overview")


def _job_filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    sort = q.get("sort") or "-id"
    if sort not in views.JOB_SORTS:
        sort = "-id"
    try:
        page = max(1, int(q.get("page") or 1))
    except ValueError:
        page = 1
    state = q.get("state") or ""
    if state not in {s.value for s in JobState}:  # an unknown state filters nothing, like an unknown sort
        state = ""
    return {"state": state, "project": q.get("project") or "", "owner": q.get("owner") or "",
            "name": q.get("name") or "", "sort": sort, "page": page}


@router.get("/jobs")
def jobs_page(request: Request) -> Response:
    session = page_session(request)
    if isinstance(session, Response):
        return session
    f = _job_filters(request)
    query = dict(state=f["state"] or None, project=f["project"] or None, owner=f["owner"] or None,
                 name=f["name"] or None, limit=PAGE_SIZE, sort=f["sort"])
    with ctx(request).db.read() as conn:
        listing = views.list_jobs(conn, offset=(f["page"] - 1) * PAGE_SIZE, **query).model_dump(mode="json")
        pages = max(1, -(-listing["total"] // PAGE_SIZE))
        if f["page"] > pages:  # a page past the end (an old link, jobs that finished): show the last one
            f["page"] = pages
            listing = views.list_jobs(conn, offset=(pages - 1) * PAGE_SIZE, **query).model_dump(mode="json")

    def link(**change: Any) -> str:
        merged = {**f, **change}
        parts = [f"{k}={quote(str(v), safe='')}" for k, v in merged.items() if v and not (k == "page" and v == 1)
                 and not (k == "sort" and v == "-id")]
        return "/jobs" + ("?" + "&".join(parts) if parts else "")

    return render(request, "jobs.html", session, listing=listing, f=f, pages=pages, link=link, title="Jobs",
                  sorts=[("-id", "newest"), ("id", "oldest"), ("-priority", "priority ↓"),
                         ("priority", "priority ↑"), ("name", "name A–Z"), ("-name", "name Z–A")])


def _previews(conn: Any, job_id: int, limit: int = 8) -> list[dict[str, Any]]:
    """The newest finished tasks' image outputs (first declared image of each)."""
    rows = conn.execute(select(tasks.c.id, tasks.c.idx, tasks.c.frames, tasks.c.frame_start, tasks.c.frame_end,
                               tasks.c.frame_step, tasks.c.frame_count, layers.c.template, layers.c.args,
                               layers.c.cwd, layers.c.name.label("layer"))
                        .join(layers, layers.c.id == tasks.c.layer_id)
                        .where(tasks.c.job_id == job_id, tasks.c.state == "succeeded")
                        .order_by(tasks.c.ended_at.desc(), tasks.c.id.desc()).limit(limit)).all()
    rows = sorted(rows, key=lambda r: r.id)
    out = []
    for row in rows:
        images = [(i, p) for i, p in enumerate(outputs_of(row)) if is_image(p)]
        if images:
            out.append({"task_id": row.id, "index": images[0][0], "frames": row.frames, "layer": row.layer,
                        "name": Path(images[0][1]).name})
    return out


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: int) -> Response:
    session = page_session(request)
    if isinstance(session, Response):
        return session
    with ctx(request).db.read() as conn:
        try:
            job = views.get_job(conn, job_id).model_dump(mode="json")
        except NotFound as exc:
            return render(request, "missing.html", session, status=404, message=exc.detail, title="Not found")
        previews = _previews(conn, job_id)
        depends = {r.id: r for r in conn.execute(select(jobs.c.id, jobs.c.name, jobs.c.state)
                                                 .where(jobs.c.id.in_(job["depends_on"] or [-1])))}
    return render(request, "job.html", session, job=job, previews=previews, depends=depends,
                  spec_text=json.dumps(job["spec"], indent=2, ensure_ascii=False), title=f"Job {job_id}")


@router.get("/ui/jobs/{job_id}/grid")
def job_grid(request: Request, job_id: int) -> Response:
    """Every task of a job in compact columns, for the canvas grid (10,000 tasks in ~200 KB).

    Served from the broadcaster's shared snapshot of the job (server/events.py), so the tabs on a
    job page cost one database read between them; after this first load, events carry only the
    cells that changed, tagged with the snapshot `version` they apply to."""
    session = page_session(request)
    if isinstance(session, Response):
        return JSONResponse({"detail": "log in again", "errors": []}, status_code=401)
    server = ctx(request)
    grid = server.events.grid(server, job_id)
    if grid is None:
        return JSONResponse({"detail": f"no job with id {job_id}", "errors": []}, status_code=404)
    return JSONResponse(grid, headers={"Cache-Control": "no-store"})


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: int) -> Response:
    session = page_session(request)
    if isinstance(session, Response):
        return session
    with ctx(request).db.read() as conn:
        try:
            task = views.get_task(conn, task_id).model_dump(mode="json")
        except NotFound as exc:
            return render(request, "missing.html", session, status=404, message=exc.detail, title="Not found")
        job = conn.execute(select(jobs.c.id, jobs.c.name, jobs.c.state).where(jobs.c.id == task["job_id"])).first()
        outputs = task_outputs(conn, task_id)
    files = []
    for i, path in enumerate(outputs[:200]):
        try:
            exists = Path(path).is_file()
        except OSError:
            exists = False
        files.append({"index": i, "path": path, "exists": exists, "image": is_image(path)})
    live = next((a for a in reversed(task["attempts"]) if a["state"] in ("running", "killing")), None)
    return render(request, "task.html", session, task=task, job=job, files=files, more_files=max(0, len(outputs) - 200),
                  live_attempt=live, title=f"Task {task_id}")


@router.get("/nodes")
def nodes_page(request: Request) -> Response:
    session = page_session(request)
    if isinstance(session, Response):
        return session
    server = ctx(request)
    summary = server.events.current_summary(server)
    history = {n["id"]: server.events.history(n["id"]) for n in summary["node_list"]}
    return render(request, "nodes.html", session, summary=summary, node_list=summary["node_list"], history=history,
                  title="Nodes")


@router.get("/nodes/{ident}")
def node_page(request: Request, ident: str) -> Response:
    session = page_session(request)
    if isinstance(session, Response):
        return session
    server = ctx(request)
    with server.db.read() as conn:
        try:
            node = views.get_node(conn, ident).model_dump(mode="json")
        except NotFound as exc:
            return render(request, "missing.html", session, status=404, message=exc.detail, title="Not found")
        base = (select(attempts, tasks.c.frames, tasks.c.layer_id, jobs.c.name.label("job_name"),
                       layers.c.name.label("layer_name"))
                .join(tasks, tasks.c.id == attempts.c.task_id).join(jobs, jobs.c.id == attempts.c.job_id)
                .join(layers, layers.c.id == tasks.c.layer_id).where(attempts.c.node_id == node["id"]))
        recent = conn.execute(base.order_by(attempts.c.id.desc()).limit(40)).all()
        failures = conn.execute(base.where(attempts.c.state.in_(("failed", "lost", "killed")))
                                .order_by(attempts.c.id.desc()).limit(20)).all()
    return render(request, "node.html", session, node=node, recent=[_attempt_row(r) for r in recent],
                  failures=[_attempt_row(r) for r in failures], history=server.events.history(node["id"]),
                  title=f"Node {node['name']}")


def _attempt_row(r: Any) -> dict[str, Any]:
    return {"id": r.id, "task_id": r.task_id, "job_id": r.job_id, "job_name": r.job_name, "layer": r.layer_name,
            "frames": r.frames, "number": r.number, "state": r.state, "started_at": iso(r.started_at),
            "ended_at": iso(r.ended_at), "exit_code": r.exit_code, "cpu_s": r.cpu_s, "peak_rss_mb": r.peak_rss_mb,
            "reason": r.reason}


# ---------------------------------------------------------------------------------------------
# Thumbnails


@router.get("/ui/thumb/{task_id}/{index}")
def thumbnail(request: Request, task_id: int, index: int) -> Response:
    session = page_session(request)
    if isinstance(session, Response):
        return JSONResponse({"detail": "log in again", "errors": []}, status_code=401)
    with ctx(request).db.read() as conn:
        outputs = task_outputs(conn, task_id)
    if not 0 <= index < len(outputs):
        raise NotFound(f"task {task_id} declares no output number {index}")
    path = outputs[index]
    if not is_image(path):
        raise Unsupported(f"{Path(path).name} is not an image the dashboard previews")
    try:
        data, media = _thumbs.get(path)
    except FileNotFoundError:
        raise NotFound(f"{Path(path).name} has not been written (yet)") from None
    except ValueError as exc:
        raise Unsupported(str(exc)) from None
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=30"})


# ---------------------------------------------------------------------------------------------
# Live events


def _ids(values: list[str], most: int = 20) -> list[int]:
    return [int(v) for v in values[:most] if v.isdigit()]


@router.get("/events")
async def events(request: Request) -> Response:
    """Server-sent events: one JSON message per broadcaster tick that changed something.

    `?job=ID` / `?task=ID` name the job or task page the tab shows: events then carry that job's
    changed grid cells, or that task's new state (see server/events.py). `?counts=0`: the tab shows
    no job progress, so changed jobs' counts need not be read for it."""
    server: ServerContext = ctx(request)
    session = server.sessions.check(server.db, request.cookies.get(COOKIE))
    if session is None:
        from thresher.server.context import current_caller, require_admin

        await require_admin(await current_caller(request))  # a tool with a bearer token may listen too
    queue = server.events.subscribe(jobs=_ids(request.query_params.getlist("job")),
                                    tasks=_ids(request.query_params.getlist("task")),
                                    job_info=request.query_params.get("counts") != "0")

    async def stream() -> Any:
        try:
            yield f"retry: 2000\ndata: {json.dumps({'hello': True, 'summary': server.events.summary_version})}\n\n"
            started = time.monotonic()
            while time.monotonic() - started < 3600:  # the browser reconnects on its own
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=15.0)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    break
                yield f"data: {json.dumps(event)}\n\n"
        finally:
            server.events.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

