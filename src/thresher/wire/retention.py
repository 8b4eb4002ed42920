"""Jobs archived and deleted, nodes removed (`server/retention.py`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from thresher.model.spec import MAX_ID
from thresher.model.states import JobState


class JobsChosen(BaseModel):
    """Which finished jobs to archive or delete: `ids`, or a filter (every given field must match)."""

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, max_length=10_000, description="these jobs (each must be finished: 409 names those that are not)")
    state: list[JobState] | None = Field(None, max_length=3, description="finished states: succeeded, failed, killed")
    project: str | None = Field(None, max_length=100, description="jobs of this project")
    older_than_s: float | None = Field(None, ge=0, le=100 * 365 * 86400.0,
                                       description="jobs that finished at least this many seconds ago")
    archived: bool | None = Field(None, description="true: only archived jobs; false: only those not archived")


class JobsChanged(BaseModel):
    """What an archive or delete did."""

    jobs: list[int] = Field(..., description="ids of the jobs archived or deleted now, ascending")
    count: int
    more: bool = Field(False, description="a filter matched more jobs than one call acts on: call again")
    already: list[int] = Field(default_factory=list, description="ids named that an earlier archive had "
                               "archived: left as they were (a filter never matches them)")
    waited_for: list[int] = Field(default_factory=list, description="failed or killed jobs a filter matched "
                                  "but left, as unfinished jobs wait for them to succeed (at most 20 named; "
                                  "retry them, or kill the waiters or drop their dependencies)")


class NodeRemoved(BaseModel):
    """A node removed from the farm (its row stays for the history of its attempts)."""

    id: int
    name: str
