"""Rendering the dashboard's pages: the Jinja2 templates, their filters and the headers every page carries.

Templates are autoescaped: every user-supplied text renders as text. Pages run under a strict
Content-Security-Policy (scripts and styles from the server only, no frames).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from thresher import __version__
from thresher.model.permissions import decide
from thresher.model.states import TASK_STATES, JobState
from thresher.server.clock import utcnow
from thresher.server.dashboard.session import Session

WEB = Path(__file__).resolve().parent.parent.parent / "web"
STATIC_DIR = WEB / "static"
JOB_STATES = [str(state) for state in JobState]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else ""


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else utcnow()
    exact = max(0.0, (finish - begin).total_seconds())
    if exact < 9.95:  # a short attempt of 0.3 s is not "0s"
        return f"{exact:.1f}s"
    seconds = int(exact)
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


def _may(session: Session | None) -> Callable[..., bool]:
    """`may("job.kill", job.owner)` in templates: whether the session's user may take that action (the
    rule `model/permissions.py`), so that a page shows only the actions the user may take. Without an
    owner an artist is shown the job actions; the API still refuses them on another's job."""
    def may(permission: str, owner: str | None = None) -> bool:
        if session is None:
            return False
        caller = session.caller
        is_owner = None if owner is None else owner == caller.name
        return decide(caller.who, permission, is_owner, read_only=caller.read_only) is None
    return may


def render(request: Request, name: str, session: Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A template as a page, or as the page's live part when the request asks `?fragment=1`."""
    fragment = request.query_params.get("fragment") == "1"
    html = _env.get_template(name).render(request=request, session=session, fragment=fragment,
                                          static_v=_static_version(), path=request.url.path, may=_may(session),
                                          **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
