"""The dashboard's projects page: what each project (show) runs against its guarantee, share and cap,
with a chart of its last hour; its folders; the pools with their nodes and each project's stake; the
licence limits in use.

Everything comes from the studio views the API answers (`server/studio_admin.py`) and the sampled
usage counters (`server/usage_history.py`), so the page shows what dispatch weighs. The chart is an
inline SVG drawn here, server side (numbers only, so safe to inline under the page's CSP); the live
part of the page is re-fetched by web/static/app.js like every other page's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from thresher.model.dispatch_rule import project_key
from thresher.server import studio_admin as admin
from thresher.server import usage_history, views
from thresher.server.clock import as_utc, utcnow
from thresher.server.context import ctx
from thresher.server.dashboard.access import DashboardRoute, PageSession
from thresher.server.dashboard.render import render

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)

CHART_SPAN_S = 3600.0       # the chart shows the last hour
CHART_W, CHART_H = 600, 120  # the chart's viewBox


def chart(samples: list[tuple[datetime, int]], guarantee: int, cap: int | None, now: datetime,
          span_s: float = CHART_SPAN_S) -> dict[str, Any]:
    """A step chart of running cores over the last `span_s`, with the guarantee and cap as lines: the
    SVG's numbers (points, the lines' heights, the top of the scale)."""
    top = max([guarantee, cap or 0, 1] + [v for _, v in samples])
    top = int(top * 1.1) + 1

    def y(value: float) -> float:
        return round(CHART_H - 1 - (min(value, top) / top) * (CHART_H - 2), 1)

    def x(at: datetime) -> float:
        return round(max(0.0, CHART_W * (1 - (now - at).total_seconds() / span_s)), 1)

    points: list[str] = []
    held: int | None = None  # the value the line holds until the next sample
    for at, value in samples:
        if (now - at).total_seconds() > span_s:  # before the window: where the line starts
            held = value
            continue
        if held is not None:
            if not points:
                points.append(f"0,{y(held)}")
            points.append(f"{x(at)},{y(held)}")
        points.append(f"{x(at)},{y(value)}")
        held = value
    if held is not None:
        if not points:
            points.append(f"0,{y(held)}")
        points.append(f"{CHART_W},{y(held)}")
    return {"points": " ".join(points), "guarantee_y": y(guarantee) if guarantee else None,
            "cap_y": y(cap) if cap is not None else None, "top": top, "w": CHART_W, "h": CHART_H}


def projects_board(conn: Connection, now: datetime) -> dict[str, Any]:
    """What the projects page shows, from the studio views (one read transaction)."""
    projects = admin.list_projects(conn)
    pools = admin.list_pools(conn)
    limits = admin.list_limits(conn)
    active = admin.active_project_ids(conn) | {p.id for p in projects if p.running_cores or p.running_gpus}
    weights = sum(p.weight for p in projects if p.id in active)
    history = usage_history.samples(conn, [project_key(p.id) for p in projects],
                                    now - timedelta(seconds=CHART_SPAN_S * 1.2))
    members: dict[str, list[Any]] = {}
    for node in views.all_nodes(conn):
        members.setdefault(node.pool, []).append(node)
    shown = []
    for p in projects:
        guarantee = sum(s.guaranteed_cores for s in p.stakes)
        samples = [(at, int(r.cores)) for r in history[project_key(p.id)] if (at := as_utc(r.at)) is not None]
        shown.append({
            "project": p, "guarantee": guarantee, "guarantee_gpus": sum(s.guaranteed_gpus for s in p.stakes),
            "share": 100.0 * p.weight / weights if p.id in active and weights else None,
            "active": p.id in active, "chart": chart(samples, guarantee, p.max_cores, now)})
    stakes = {pool.name: [(p, s) for p in projects for s in p.stakes if s.pool == pool.name] for pool in pools}
    return {"projects": shown, "pools": pools, "members": members, "stakes": stakes, "limits": limits}


@router.get("/projects")
def projects_page(request: Request, session: PageSession) -> Response:
    server = ctx(request)
    with server.db.read() as conn:
        board = projects_board(conn, utcnow())
    return render(request, "projects.html", session, title="Projects", sample_s=server.settings.usage_sample_s,
                  **board)
