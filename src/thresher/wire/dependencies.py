"""A job's dependencies as the API shows them (`GET /jobs/{id}/dependencies`), adds (task on task) and
drops them; `server/dependencies.py` makes them, `model/dependencies.py` is the rule."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from thresher.model.spec import MAX_ID


class DependencyEdge(BaseModel):
    """One dependency: a waiter (a job, one of its layers, or a task) waits for a target. A frame-by-frame
    dependency is shown once per pair of layers, with the number of task edges it holds."""

    id: int = Field(..., description="the first of its rows")
    kind: str = Field(..., description="job | layer | frame | task")
    mode: str = Field(..., description="success (the target must succeed) | finished (any end)")
    waiter_job: int
    waiter_layer: str | None = Field(None, description="none: the whole job waits")
    waiter_task: int | None = Field(None, description="for a task-on-task dependency")
    target_job: int
    target_job_name: str
    target_job_state: str = Field(..., description="the target job's state (for a layer or task edge too)")
    target_state: str = Field(..., description="the state of what it waits for: the task's (a task edge on one "
                              "task), the layer's (a layer or frame-by-frame edge), the job's (a job edge)")
    target_layer: str | None = Field(None, description="none: the whole job is waited for")
    target_task: int | None = None
    edges: int = Field(1, description="task edges it holds (frame by frame: one per overlapping pair)")


class JobDependencies(BaseModel):
    """What a job waits for, what waits for it, and what blocks it now."""

    job_id: int
    waits_for: list[DependencyEdge]
    waited_by: list[DependencyEdge]
    pending: str | None = Field(None, description="why it runs nothing now (`blocked: job 12 layer render failed`)")


class NewDependency(BaseModel):
    """A task of this job waits for a task (of this job or another): `POST /jobs/{id}/dependencies`."""

    model_config = ConfigDict(extra="forbid")

    task: int = Field(..., ge=1, le=MAX_ID, description="the task of this job that waits (waiting or ready)")
    on_task: int = Field(..., ge=1, le=MAX_ID, description="the task it waits for")
    on: Literal["success", "finished"] = "success"


class DroppedDependencies(BaseModel):
    """How many dependency rows a drop removed (what only they held is released)."""

    job_id: int
    dropped: int
