"""The server itself: health, who the caller is, and the job templates it knows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(..., examples=["ok"])
    version: str
    leader: bool = Field(True, description="whether this server process does the farm's housekeeping (of several "
                                           "processes on one PostgreSQL, one does; see server/leader.py)")


class WhoAmI(BaseModel):
    kind: str = Field(..., description="admin, user, enroll or node")
    name: str = Field(..., description="a person's user name; else the token's name")
    node_id: int | None
    role: str | None = Field(None, description="a person's role: admin, wrangler, artist or viewer")
    read_only: bool = Field(False, description="a read-only token acts as a viewer")


class Template(BaseModel):
    """A job template: what its layers' `args` may hold, and the applications it runs."""

    name: str
    description: str
    args: dict[str, Any] = Field(..., description="JSON schema of a layer's `args`")
    apps: dict[str, dict[str, str]] = Field(..., description="application -> {os: default executable}")
    tiles: bool = Field(..., description="whether its layers may be split into tiles")
