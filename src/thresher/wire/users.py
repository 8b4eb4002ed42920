"""People: users, their roles, personal tokens, the password login, project members (`server/users.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from thresher.model.text import USER_PATTERN
from thresher.wire.common import Moment

UserName = Annotated[str, Field(pattern=USER_PATTERN, description="letters, digits, `_`, `.`, `@`, `-`; 1 to 100")]
RoleName = Literal["admin", "wrangler", "artist", "viewer"]
Password = Annotated[str, Field(min_length=8, max_length=1024, description="8 characters at least")]
TokenName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class User(BaseModel):
    id: int
    name: str
    role: str = Field(..., description="admin, wrangler, artist or viewer")
    source: str = Field(..., description="local (or, later, ldap)")
    disabled: bool
    has_password: bool
    created_at: Moment
    locked_until: Moment | None = Field(None, description="failed logins locked this user name until then "
                                                          "(`thresher user unlock` lifts it)")
    sessions: int = Field(0, description="dashboard sessions open now")


class UserCreate(_Body):
    name: UserName
    role: RoleName = "artist"
    password: Password | None = None


class UserPatch(_Body):
    role: RoleName | None = None
    disabled: bool | None = None


class PasswordBody(_Body):
    password: Password


class OwnPasswordBody(_Body):
    old_password: str = Field(..., min_length=1, max_length=1024, description="the password now")
    password: Password


class SessionInfo(BaseModel):
    """One dashboard login (`server/dashboard/session.py`)."""

    id: int
    user: str
    created_at: Moment
    last_seen: Moment = Field(..., description="the last use, within a few minutes")
    address: str | None
    user_agent: str | None
    with_token: bool = Field(..., description="logged in with a token (else with a password)")
    ended_at: Moment | None
    end_reason: str | None = Field(None, description="logout, everywhere, disabled, role or password")


class SessionsEnded(BaseModel):
    user: str
    ended: int = Field(..., description="how many open sessions were ended")


class TokenCreate(_Body):
    name: TokenName
    expires_in_days: float | None = Field(None, gt=0, le=36500, description="none: the server's longest")
    read_only: bool = False


class TokenInfo(BaseModel):
    id: int
    name: str
    user: str
    kind: str
    created_at: Moment
    expires_at: Moment | None
    read_only: bool
    revoked_at: Moment | None


class TokenCreated(TokenInfo):
    secret: str = Field(..., description="the token itself: shown this once, stored only as a digest")


class LoginBody(_Body):
    user: UserName
    password: str = Field(..., min_length=1, max_length=1024)
    token_name: TokenName = "cli"
    expires_in_days: float | None = Field(None, gt=0, le=36500)


class Members(BaseModel):
    project: str
    members: list[str] = Field(..., description="user names; empty: anyone who may submit may submit here")


class MemberBody(_Body):
    user: UserName
