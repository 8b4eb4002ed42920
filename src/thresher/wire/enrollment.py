"""Enrollment tokens an admin manages (`server/enrollment.py`, `model/enrollment.py`): made, listed,
revoked. The secret is in the answer to the making only; listings never carry it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from thresher.wire.common import Moment
from thresher.wire.studio import Name
from thresher.wire.users import TokenName


class EnrollTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TokenName = Field(..., description="what it is for (`render room B`), shown in listings and refusals")
    one_time: bool = Field(False, description="true: it enrols one node, then is used up; false: reusable until "
                                              "it expires or is revoked")
    expires_in_days: float | None = Field(None, gt=0, le=36500, description="none: never (until revoked)")
    pool: Name | None = Field(None, description="the pool the nodes it enrols join (made if new); it wins over the "
                                                "agent's --pool. None: the agent's --pool, else `default`")


class EnrollToken(BaseModel):
    id: int
    name: str
    one_time: bool
    pool: str | None
    state: str = Field(..., description="active, used (one-time, spent), expired or revoked")
    used_count: int = Field(..., description="registrations made with it")
    last_used_at: Moment | None
    created_at: Moment
    expires_at: Moment | None
    revoked_at: Moment | None


class EnrollTokenCreated(EnrollToken):
    secret: str = Field(..., description="the token itself: shown this once, stored only as a digest")
