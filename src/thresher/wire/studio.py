"""Studio scheduling as people see and steer it: projects (shows) with their folders and stakes in
pools, pools of nodes, licence limits; and the bodies of the calls that change them.

What runs now comes from the usage counters (`server/usage.py`), the figures dispatch checks caps
against, so what a wrangler reads is what the dispatcher weighs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from thresher.model.spec import MAX_ID
from thresher.model.text import check_name
from thresher.wire.common import Moment
from thresher.wire.nodes import Node

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
"""Pools, limits and folders: one word, as it appears in specs, keys and command lines."""


def _project_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return check_name(value)


Name = Annotated[str, Field(pattern=NAME_PATTERN, description="letters, digits, `_`, `.`, `-`; 1 to 64")]
ProjectName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_project_name)]
Cap = Annotated[int | None, Field(ge=0, le=MAX_ID, description="at most this many; null: no cap")]
Count = Annotated[int, Field(ge=0, le=MAX_ID)]
Weight = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False, description="fair-share weight")]
Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_below(floor_field: str) -> Any:
    """A cap checked against the guarantee (or minimum) given before it in the same body."""
    def check(cls: type, value: int | None, info: ValidationInfo) -> int | None:
        floor = info.data.get(floor_field)
        if value is not None and floor is not None and value < floor:
            raise ValueError(f"must be at least {floor_field} ({floor}), or null for no cap")
        return value
    return classmethod(check)


# ------------------------------------------------------------------ answers

class Stake(BaseModel):
    """A project's stake in one pool: guaranteed size and burst cap, and what it runs there now."""

    pool: str
    guaranteed_cores: int
    max_cores: int | None
    guaranteed_gpus: int
    max_gpus: int | None
    running_cores: int
    running_gpus: int


class Folder(BaseModel):
    """A folder of a project's jobs: its place among the project's folders, its minimum and cap."""

    id: int
    name: str
    priority: int
    min_cores: int | None
    max_cores: int | None
    running_cores: int


class Project(BaseModel):
    """A project (show): its fair-share weight, farm-wide caps, stakes per pool and folders."""

    id: int
    name: str
    weight: float
    max_cores: int | None
    max_gpus: int | None
    running_cores: int
    running_gpus: int
    stakes: list[Stake] = Field(..., description="one per pool; a pool without a stake set shows zeros")
    folders: list[Folder]


class Pool(BaseModel):
    """A pool of nodes and what runs in it now (every project's counter in the pool)."""

    name: str
    nodes: int = Field(..., description="nodes serving this pool")
    cores: int = Field(..., description="cores of those nodes")
    running_cores: int
    running_gpus: int


class PoolDetail(Pool):
    """A pool with its nodes."""

    members: list[Node]


class Limit(BaseModel):
    """A licence limit: units in use at most, farm-wide and per node, and the units in use now."""

    name: str
    max_total: int
    max_per_node: int | None
    in_use: int


class UsagePoint(BaseModel):
    """One sample of a usage counter."""

    at: Moment
    cores: int
    gpus: int
    units: int


class UsageSeries(BaseModel):
    """The samples of one of a project's counters: its own (`kind` project), in one pool, or of a folder."""

    key: str = Field(..., description='the counter: "project:3", "project:3/pool:gpu", "folder:7"')
    kind: str = Field(..., description="project, pool or folder")
    name: str = Field(..., description="the project's, pool's or folder's name")
    points: list[UsagePoint]


class ProjectUsage(BaseModel):
    """What a project ran over time, sampled every `sample_s` by the server (`usage_sample_s`). A counter
    at zero is not stored: its series holds zeros at the times of the project's own samples."""

    project: str
    since: Moment
    sample_s: float
    series: list[UsageSeries]


# ------------------------------------------------------------------ bodies

class ProjectCreate(_Body):
    name: ProjectName
    weight: Weight = 1.0
    max_cores: Cap = None
    max_gpus: Cap = None


class ProjectPatch(_Body):
    """Only the fields given change; a cap given as null is removed."""

    weight: Weight | None = None
    max_cores: Cap = None
    max_gpus: Cap = None


class FolderCreate(_Body):
    name: Name
    priority: Priority = 0
    min_cores: Cap = None
    max_cores: Cap = None

    _max_cores = field_validator("max_cores")(_not_below("min_cores"))


class FolderPatch(_Body):
    """Only the fields given change; a minimum or cap given as null is removed."""

    priority: Priority | None = None
    min_cores: Cap = None
    max_cores: Cap = None


class StakeBody(_Body):
    guaranteed_cores: Count = 0
    max_cores: Cap = None
    guaranteed_gpus: Count = 0
    max_gpus: Cap = None

    _max_cores = field_validator("max_cores")(_not_below("guaranteed_cores"))
    _max_gpus = field_validator("max_gpus")(_not_below("guaranteed_gpus"))


class NodePoolBody(_Body):
    pool: Name


class LimitCreate(_Body):
    name: Name
    max_total: Count
    max_per_node: Cap = None


class LimitPatch(_Body):
    """Only the fields given change; `max_per_node` given as null is removed."""

    max_total: Count | None = None
    max_per_node: Cap = None


class UrgentBody(_Body):
    urgent: bool


class MoveBody(_Body):
    folder: Name
