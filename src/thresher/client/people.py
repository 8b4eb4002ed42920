"""The people calls of the Python API (users, personal tokens, the password login, projects' members),
beside `client/api.py`'s `Thresher`: `People(thresher.http)`. Each path is spelled once, here."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from thresher.client.http import HttpClient
from thresher.wire.audit import AuditEntry
from thresher.wire.common import Page
from thresher.wire.users import Members, SessionInfo, SessionsEnded, TokenCreated, TokenInfo, User


def _seg(value: int | str) -> str:
    return quote(str(value), safe="")


class People:
    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def audit(self, *, who: str | None = None, operation: str | None = None, job: int | None = None,
              allowed: bool | None = None, since: datetime | None = None, until: datetime | None = None,
              limit: int = 100, offset: int = 0) -> Page[AuditEntry]:
        """A page of the audit log, the newest first (wranglers and admins)."""
        return Page[AuditEntry].model_validate(self.http.get(
            "/audit", who=who, operation=operation, job=job, allowed=None if allowed is None else str(allowed).lower(),
            since=since.isoformat() if since else None, until=until.isoformat() if until else None,
            limit=limit, offset=offset))

    def users(self) -> list[User]:
        return Page[User].model_validate(self.http.get("/users")).items

    def user(self, name: str) -> User:
        return User.model_validate(self.http.get(f"/users/{_seg(name)}"))

    def add_user(self, name: str, role: str = "artist", password: str | None = None) -> User:
        return User.model_validate(self.http.post("/users", json={"name": name, "role": role, "password": password}))

    def set_user(self, name: str, role: str | None = None, disabled: bool | None = None) -> User:
        body = {k: v for k, v in {"role": role, "disabled": disabled}.items() if v is not None}
        return User.model_validate(self.http.request("PATCH", f"/users/{_seg(name)}", json=body))

    def set_password(self, name: str, password: str) -> User:
        return User.model_validate(self.http.request("PUT", f"/users/{_seg(name)}/password",
                                                     json={"password": password}))

    def change_own_password(self, old_password: str, password: str) -> User:
        """Your own password (the old one is asked; counts towards the lockout like a login)."""
        return User.model_validate(self.http.request("PUT", "/password", json={
            "old_password": old_password, "password": password}))

    def unlock(self, name: str) -> User:
        """Lift a user name's lockout after failed logins (admins)."""
        return User.model_validate(self.http.post(f"/users/{_seg(name)}/unlock"))

    def sessions(self, name: str) -> list[SessionInfo]:
        """A user's dashboard sessions, the newest first (admins)."""
        return Page[SessionInfo].model_validate(self.http.get(f"/users/{_seg(name)}/sessions")).items

    def end_sessions(self, name: str) -> SessionsEnded:
        """Log out everywhere: every dashboard session of a user (yours; an admin: anyone's)."""
        return SessionsEnded.model_validate(self.http.post(f"/users/{_seg(name)}/sessions/end"))

    def create_token(self, name: str, expires_in_days: float | None = None, read_only: bool = False) -> TokenCreated:
        return TokenCreated.model_validate(self.http.post("/tokens", json={
            "name": name, "expires_in_days": expires_in_days, "read_only": read_only}))

    def tokens(self, everyone: bool = False) -> list[TokenInfo]:
        return Page[TokenInfo].model_validate(self.http.get("/tokens", all="true" if everyone else None)).items

    def revoke_token(self, token_id: int) -> TokenInfo:
        return TokenInfo.model_validate(self.http.request("DELETE", f"/tokens/{token_id}"))

    def login(self, user: str, password: str, token_name: str = "cli") -> TokenCreated:
        return TokenCreated.model_validate(self.http.post("/login", json={
            "user": user, "password": password, "token_name": token_name}))

    def logout(self) -> TokenInfo:
        return TokenInfo.model_validate(self.http.post("/logout"))

    def members(self, project: str) -> Members:
        return Members.model_validate(self.http.get(f"/projects/{_seg(project)}/members"))

    def add_member(self, project: str, user: str) -> Members:
        return Members.model_validate(self.http.post(f"/projects/{_seg(project)}/members", json={"user": user}))

    def remove_member(self, project: str, user: str) -> Members:
        return Members.model_validate(self.http.request("DELETE", f"/projects/{_seg(project)}/members/{_seg(user)}"))
