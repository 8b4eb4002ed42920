"""The dashboard's users page (`/users`, admins): every user with their role, source, state, lockout
and open sessions; forms and buttons that call the people API (add, change role, disable or enable,
unlock, end sessions), as the other pages' actions do; `?user=NAME` lists that user's sessions.
Others get a 403 page; the nav links it only for those who may manage users (`may("user.manage")`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from thresher.model.permissions import decide
from thresher.server import logins, user_sessions, users
from thresher.server.context import ctx
from thresher.server.dashboard.access import DashboardRoute, PageSession
from thresher.server.dashboard.render import render
from thresher.server.errors import NotFound
from thresher.wire.users import SessionInfo, User

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)

ROLES = ("admin", "wrangler", "artist", "viewer")


@router.get("/users")
def users_page(request: Request, session: PageSession, user: str | None = None) -> Response:
    refusal = decide(session.caller.who, "user.manage", read_only=session.caller.read_only)
    if refusal is not None:
        return render(request, "missing.html", session, status=403, message=refusal.reason, title="Not allowed")
    server = ctx(request)
    chosen: User | None = None
    sessions: list[SessionInfo] = []
    with server.db.read() as conn:
        people = logins.standing(conn, users.list_users(conn), server.settings)
        if user:
            try:
                chosen = users.get_user(conn, user[:100])
                sessions = user_sessions.list_sessions(conn, chosen.id)
            except NotFound:
                chosen = None
    return render(request, "users.html", session, title="Users", people=people, roles=ROLES, chosen=chosen,
                  sessions=sessions)
