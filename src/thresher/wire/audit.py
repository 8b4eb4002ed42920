"""The audit log's shapes (`server/audit.py`): one entry, and the filters of a listing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from thresher.wire.common import Moment


class AuditEntry(BaseModel):
    """One state-changing call: who, from where, what, and whether it was allowed."""

    id: int
    at: Moment
    who: str | None = Field(..., description="the user or token name; none: no valid credential")
    kind: str = Field(..., description="user, node, enroll or anonymous")
    role: str | None = Field(..., description="a person's role")
    address: str | None = Field(..., description="the client's address")
    method: str
    operation: str = Field(..., description="the route's operation id (`kill_job`)")
    target: dict[str, Any] = Field(..., description="the path parameters (`{\"job_id\": \"12\"}`)")
    status: int = Field(..., description="the HTTP status answered")
    allowed: bool = Field(..., description="false for a refusal (401, 403)")
    reason: str | None = Field(..., description="a refusal's detail")


class AuditFilter(BaseModel):
    """What a listing of the audit log keeps (every filter optional, all of them together)."""

    who: str | None = None
    operation: str | None = None
    job: int | None = None
    allowed: bool | None = None
    since: Moment = None  # a moment without a zone is UTC
    until: Moment = None
