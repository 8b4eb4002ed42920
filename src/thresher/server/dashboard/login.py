"""Logging in and out of the dashboard.

The login form carries a one-time nonce that must match a short-lived cookie scoped to `/login`, so
another site cannot log a browser in with credentials of its choosing. A user name and password
(checked by `server/logins.py`, the same check and lockout as the API's `POST /login`) or a person's
token buys a session (dashboard/session.py: a row in the database, a cookie naming it); the token
itself never reaches the browser's storage. A one-time link (`/login?once=...`, dashboard/once.py)
buys one too, once. Logging out ends the session's row; "log out everywhere" every session of the user.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from thresher.server import logins, user_sessions
from thresher.server.addresses import client_address
from thresher.server.clock import utcnow
from thresher.server.context import ServerContext, ctx
from thresher.server.dashboard import once as once_links
from thresher.server.dashboard.access import DashboardRoute, cookie_secure, set_session_cookie
from thresher.server.dashboard.render import render
from thresher.server.dashboard.session import COOKIE, Session, csrf_ok
from thresher.server.errors import ApiProblem

LOGIN_COOKIE = "thresher_login"

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}


@router.get("/login")
def login_form(request: Request, next: str = "/", error: str | None = None,  # noqa: A002
               once: str | None = None, status: int = 401, user: str = "") -> Response:
    if once is not None:
        return _login_once(request, once, _safe_next(next))
    nonce = secrets.token_urlsafe(18)
    response = render(request, "login.html", None, status=status if error else 200, login_csrf=nonce,
                      next=_safe_next(next), error=error, user=user)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                        secure=cookie_secure(request), path="/login")
    return response


def _login_once(request: Request, once: str, target: str) -> Response:
    """A one-time link (dashboard/once.py, printed by `thresher demo` and `up`): spent on first use."""
    server = ctx(request)
    data_dir = server.settings.data_dir
    token_digest = once_links.redeem(data_dir, once) if data_dir is not None else None
    made = (server.sessions.login_digest(server.db, token_digest, client_address(request),
                                         request.headers.get("user-agent")) if token_digest else None)
    if made is None:
        return login_form(request, next=target, error="That login link was used already or has expired; "
                                                        "log in with the admin token.")
    cookie, session = made
    response = RedirectResponse(target, status_code=303)
    response.headers["Referrer-Policy"] = "no-referrer"
    set_session_cookie(request, response, cookie, session)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    target = _safe_next(form.get("next"))
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not secrets.compare_digest(expected, form.get("csrf", "")):
        return login_form(request, next=target, error="The login form expired; please try again.")
    server = ctx(request)
    address, agent = client_address(request), request.headers.get("user-agent")
    name = form.get("user", "").strip()
    if name:
        try:
            row = await run_in_threadpool(logins.password_login, server.db, server.settings, name,
                                          form.get("password", ""), address)
        except ApiProblem as refused:
            message = ("Wrong user name or password." if refused.status == 401 else
                       f"Too many failed logins: {refused.detail.split(': ', 1)[-1]}." if refused.status == 429
                       else f"{refused.detail[:1].upper()}{refused.detail[1:]}.")  # LDAP: no role (403), down (503)
            return login_form(request, next=target, error=message, status=refused.status, user=name[:100])
        made = await run_in_threadpool(server.sessions.login_user, server.db, row.id, address, agent)
    else:
        made = await run_in_threadpool(server.sessions.login, server.db, form.get("token", ""), address, agent)
    if made is None:
        return login_form(request, next=target, error="That token is not a valid admin token or personal token.")
    cookie, session = made
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, cookie, session)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    server = ctx(request)
    session = await run_in_threadpool(server.sessions.check, server.db, request.cookies.get(COOKIE))
    if session is not None and not csrf_ok(session, form.get("csrf")):
        return JSONResponse({"detail": "missing or wrong CSRF token", "errors": []}, status_code=403)
    if session is not None:
        await run_in_threadpool(_end, server, session, form.get("everywhere") == "1")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _end(server: ServerContext, session: Session, everywhere: bool) -> None:
    """Log out: this session, or every session of its user."""
    if not everywhere:
        server.sessions.end(server.db, session)
        return
    with server.db.write() as conn:
        user_sessions.end_all(conn, session.caller.user_id or 0, utcnow(), "everywhere")
