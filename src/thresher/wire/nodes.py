"""The farm's render nodes, as people see them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from thresher.model.spec import Tags
from thresher.model.states import AttemptState, NodeAdminState, NodeState
from thresher.wire.common import Moment


class NodeGpu(BaseModel):
    """One GPU of a node as shown (what its agent registered, checked then: `wire.agent.Gpu`)."""

    index: int
    name: str = ""
    memory_mb: int = 0
    uuid: str = ""


class RunningOnNode(BaseModel):
    """A live attempt on a node and what it holds."""

    attempt_id: int
    task_id: int
    job_id: int
    cores: int
    memory_mb: int
    gpus: list[int]
    state: AttemptState
    job_name: str | None = Field(None, description="the job's name")
    layer: str | None = Field(None, description="the task's layer")
    frames: str | None = Field(None, description="the task's frames (`1-10`, `42`)")
    progress: float | None = Field(None, description="the task's progress in percent, as its output says")


class NodeFree(BaseModel):
    """What a node has free once its live attempts have what they hold (`thresher.model.fit.node_free`)."""

    cores: int
    memory_mb: int
    gpus: int = Field(..., description="how many of its GPUs are free")


class NodeSpeed(BaseModel):
    """How fast a node renders relative to the farm, from the same layers' frame times on other nodes
    (`thresher.model.estimate.node_speed`): 1.0 as fast as the farm's median, 2.0 twice as fast."""

    speed: float
    layers: int = Field(..., description="layers that ran on it and on other nodes, which it rests on")
    samples: int = Field(..., description="its succeeded attempts on those layers")


class Node(BaseModel):
    id: int
    name: str
    hostname: str
    os: str
    state: NodeState
    admin_state: NodeAdminState
    cores: int
    memory_mb: int
    gpus: list[NodeGpu]
    tags: list[str]
    apps: dict[str, str]
    pool: str = Field("default", description="the pool (cluster) it serves")
    mac: str | None = Field(None, description="hardware address of its first network interface, as its agent "
                                             "last registered it")
    last_seen: Moment
    registered_at: Moment
    cpu_percent: float | None
    memory_used_mb: int | None
    load: float | None
    running: list[RunningOnNode]
    free: NodeFree
    blocklisted_by: list[int] = Field(default_factory=list, description="ids of the jobs whose blocklist keeps "
                                                                        "it from their tasks")
    speed: NodeSpeed | None = Field(None, description="relative to the farm (the node detail only); null: unknown")


class NodeChange(BaseModel):
    """A wrangler's change to a node (`PATCH /nodes/{name}`): its tags, replacing the agent's."""

    tags: Tags = Field(..., max_length=100, description="the node's tags, replacing what it has (until its agent "
                                                       "registers again: a restart states its configured tags)")
