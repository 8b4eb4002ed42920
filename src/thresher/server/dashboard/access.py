"""Who may see the dashboard: one dependency per kind of route for "this needs a logged-in session".

- `PageSession`: an HTML page. Without a session the answer is a redirect to the login form (which
  comes back to the page), or 401 for a page's live part (`?fragment=1`: the script then reloads).
- `DataSession`: what the page scripts fetch (the task grid, thumbnails): 401 without a session.
- `OptionalSession`: the event stream, which a tool with an admin bearer token may open too.

Routes of `DashboardRoute` turn a missing session into those answers, and send a logged-in browser a
cookie stamped with this use when the one it holds is getting old (dashboard/session.py, which then
stamps the session row's last use), so using the dashboard keeps the session open without a
database write per request.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Coroutine
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from thresher.server.addresses import forwarded_https
from thresher.server.context import ctx
from thresher.server.dashboard.session import COOKIE, Session


class LoginNeeded(Exception):
    """No valid session; `redirect`: answer with the login form rather than a 401."""

    def __init__(self, redirect: bool) -> None:
        super().__init__("log in again")
        self.redirect = redirect

    def answer(self, request: Request) -> Response:
        if not self.redirect:
            return JSONResponse({"detail": "log in again", "errors": []}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https" or forwarded_https(request)


def set_session_cookie(request: Request, response: Response, cookie: str, session: Session) -> None:
    response.set_cookie(COOKIE, cookie, max_age=ctx(request).sessions.max_age(session), httponly=True,
                        samesite="strict", secure=cookie_secure(request), path="/")


def optional_session(request: Request) -> Session | None:
    """The request's session, if its cookie holds a valid one (remembered for the cookie refresh)."""
    server = ctx(request)
    session = server.sessions.check(server.db, request.cookies.get(COOKIE))
    if session is not None:
        request.state.session = session
    return session


def page_session(request: Request) -> Session:
    session = optional_session(request)
    if session is None:
        raise LoginNeeded(redirect=request.query_params.get("fragment") != "1")
    return session


def data_session(request: Request) -> Session:
    session = optional_session(request)
    if session is None:
        raise LoginNeeded(redirect=False)
    return session


PageSession = Annotated[Session, Depends(page_session)]
DataSession = Annotated[Session, Depends(data_session)]
OptionalSession = Annotated[Session | None, Depends(optional_session)]


class DashboardRoute(APIRoute):
    """A dashboard route: answers LoginNeeded, and refreshes the session cookie of a logged-in request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginNeeded as needed:
                return needed.answer(request)
            session: Session | None = getattr(request.state, "session", None)
            if session is not None:
                server = ctx(request)
                fresh = await run_in_threadpool(server.sessions.refreshed, session, server.db)  # stamps last_seen
                if fresh is not None:
                    set_session_cookie(request, response, fresh, session)
            return response

        return answer
