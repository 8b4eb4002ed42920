"""A simulation scenario as a wrangler writes it (YAML): nodes, projects, folders, stakes, limits, services and a
trace of job arrivals. Typed, so a bad scenario is refused naming the field (`load_scenario`), never
with a stack trace; every random draw comes from `seed`, so a run is reproducible.

Virtual time is in seconds from the start of the run; `tick_s` is how finely it is cut: events that
fall within one tick are handled together, as a real server batches the reports and requests for
work that arrive together (a larger tick is faster and coarser)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from thresher.model.services import ServiceDefaults

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrameTime(_Strict):
    """Seconds one frame takes on a node of speed 1: `fixed` (`seconds`), `uniform` (`low`..`high`) or
    `lognormal` (median `seconds`, spread `sigma`)."""

    dist: Literal["fixed", "uniform", "lognormal"] = "fixed"
    seconds: float = Field(60.0, gt=0)
    low: float | None = Field(None, gt=0)
    high: float | None = Field(None, gt=0)
    sigma: float = Field(0.5, ge=0, le=5)

    @model_validator(mode="after")
    def _bounds(self) -> "FrameTime":
        if self.dist == "uniform":
            if self.low is None or self.high is None:
                raise ValueError("a uniform frame time needs low and high")
            if self.high < self.low:
                raise ValueError("high must be at least low")
        return self


class NodeGroup(_Strict):
    """`count` identical nodes. `speed`: frames per second relative to speed 1 (2.0 renders twice as
    fast). `failure_rate`: the share of attempts that fail (exit 1, partway through); `loss_rate`: the
    share of attempts during which the node crashes (every attempt on it lost, back after `repair_s`)."""

    name: Name
    count: int = Field(..., ge=0, le=100_000)
    cores: int = Field(8, ge=1, le=4096)
    memory_mb: int = Field(32_000, ge=1)
    gpus: int = Field(0, ge=0, le=64)
    pool: Name | None = None
    tags: list[str] = Field(default_factory=list)
    speed: float = Field(1.0, gt=0, le=100)
    failure_rate: float = Field(0.0, ge=0, le=1)
    loss_rate: float = Field(0.0, ge=0, le=1)
    repair_s: float = Field(600.0, ge=0)


class Project(_Strict):
    name: Name
    weight: float = Field(1.0, ge=0, le=1_000_000, description="0: only what no other project wants")
    max_cores: int | None = Field(None, ge=0)
    max_gpus: int | None = Field(None, ge=0)


class Folder(_Strict):
    project: Name
    name: Name
    priority: int = 0
    min_cores: int | None = Field(None, ge=0)
    max_cores: int | None = Field(None, ge=0)


class Stake(_Strict):
    """A project's guaranteed size and burst cap in one pool."""

    project: Name
    pool: Name
    guaranteed_cores: int = Field(0, ge=0)
    max_cores: int | None = Field(None, ge=0)
    guaranteed_gpus: int = Field(0, ge=0)
    max_gpus: int | None = Field(None, ge=0)


class Limit(_Strict):
    """A licence limit: units in use at most, farm-wide and per node."""

    name: Name
    max_total: int = Field(..., ge=0)
    max_per_node: int | None = Field(None, ge=0)


class Service(_Strict):
    """A service as an admin keeps it (`thresher service add`): layer defaults a layer takes by naming
    it (`service:`), applied at submit by the server's own rule (`model/services.apply_service`): what
    the layer sets itself wins, field by field."""

    name: Name
    defaults: ServiceDefaults = Field(default_factory=ServiceDefaults)


class Layer(_Strict):
    """One layer of a job. A field left out takes the layer's `service`'s value when it names one that
    gives it, else the default shown here."""

    name: Name
    frames: int = Field(..., ge=1, le=10_000_000, description="how many frames (1..frames)")
    chunk: int = Field(1, ge=1, le=1_000_000)
    cores: int = Field(1, ge=1, le=4096)
    memory_mb: int = Field(1024, ge=0)
    gpus: int = Field(0, ge=0, le=64)
    tags: list[str] = Field(default_factory=list)
    pools: list[str] = Field(default_factory=list)
    limits: dict[str, int] = Field(default_factory=dict)
    retries: int = Field(2, ge=0, le=100)
    blocklist_after: int | None = Field(None, ge=1, le=1000, description="failed attempts of the job on one node "
                                                                       "after which it avoids that node")
    depends_on: list[str] = Field(default_factory=list)
    frame_time: FrameTime = Field(default_factory=FrameTime)
    service: Name | None = Field(None, description="a service of the scenario whose defaults it takes")


class Job(_Strict):
    """One arrival of the trace. `repeat` submits it that many times, `every_s` apart; `depends_on`
    names earlier jobs of the trace (by `name`)."""

    at: float = Field(0.0, ge=0, description="seconds after the start")
    name: Name
    project: Name = "default"
    folder: Name | None = None
    priority: int = Field(50, ge=0, le=1000)
    depends_on: list[str] = Field(default_factory=list)
    layers: list[Layer] = Field(..., min_length=1)
    repeat: int = Field(1, ge=1, le=1_000_000)
    every_s: float = Field(0.0, ge=0)


class Scenario(_Strict):
    name: str = "scenario"
    seed: int = 1
    tick_s: float = Field(1.0, gt=0, le=3600)
    task_overhead_s: float = Field(0.0, ge=0, description="seconds every task takes besides its frames "
                                                        "(starting the process, reporting): measure it on the farm")
    recheck_s: float = Field(300.0, gt=0, description="how often nodes that found nothing ask again without news "
                                                     "(the server's news_recheck_s; smaller is closer, slower)")
    until_s: float | None = Field(None, gt=0, description="stop the run here (virtual seconds); none: when all is done")
    sample_s: float | None = Field(None, gt=0, description="width of a report bucket; none: a hundredth of the run")
    nodes: list[NodeGroup] = Field(..., min_length=1)
    projects: list[Project] = Field(default_factory=list)
    folders: list[Folder] = Field(default_factory=list)
    stakes: list[Stake] = Field(default_factory=list)
    limits: list[Limit] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    jobs: list[Job] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _references(self) -> "Scenario":
        groups = [g.name for g in self.nodes]
        if len(set(groups)) != len(groups):
            raise ValueError("node group names must be unique")
        projects = {p.name for p in self.projects}
        for kind, named in (("folder", [f.project for f in self.folders]), ("stake", [s.project for s in self.stakes])):
            for project in named:
                if project not in projects:
                    raise ValueError(f"{kind} names project {project!r}, not in projects")
        pools = {g.pool or "default" for g in self.nodes}
        for stake in self.stakes:
            if stake.pool not in pools:
                raise ValueError(f"stake names pool {stake.pool!r}, which no node group serves")
        limits = {lim.name for lim in self.limits}
        services = {service.name: service.defaults for service in self.services}
        if len(services) != len(self.services):
            raise ValueError("service names must be unique")
        for name, defaults in services.items():
            unknown = set(defaults.limits or {}) - limits
            if unknown:
                raise ValueError(f"service {name!r}: unknown limits {sorted(unknown)}")
            unserved = set(defaults.pools or []) - pools
            if unserved:
                raise ValueError(f"service {name!r}: pools {sorted(unserved)} are served by no node group")
        seen: dict[str, float] = {}
        for job in self.jobs:
            for dep in job.depends_on:
                if dep not in seen:
                    raise ValueError(f"job {job.name!r} depends on {dep!r}, not an earlier job of the trace")
                if seen[dep] > job.at:
                    raise ValueError(f"job {job.name!r} arrives before {dep!r}, which it depends on")
            for layer in job.layers:
                unknown = set(layer.limits) - limits
                if unknown:
                    raise ValueError(f"job {job.name!r} layer {layer.name!r}: unknown limits {sorted(unknown)}")
                if layer.service is not None and layer.service not in services:
                    raise ValueError(f"job {job.name!r} layer {layer.name!r}: service {layer.service!r} is not "
                                     f"in services (known: {', '.join(sorted(services)) or 'none'})")
            seen[job.name] = job.at
        return self

    def group(self, name: str) -> NodeGroup:
        for g in self.nodes:
            if g.name == name:
                return g
        raise KeyError(name)


class ScenarioError(ValueError):
    """A scenario that cannot be run: the message names the file, the field and the problem."""


def _problems(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        where = ".".join(str(part) for part in e["loc"]) or "(top)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(f"{source}: bad scenario\n{_problems(error)}") from None


def read_scenario_data(path: Path) -> Any:
    """A scenario file's YAML, not yet checked (`--from-server` lays it over the farm's snapshot)."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not YAML ({error})") from None


def load_scenario(path: Path) -> Scenario:
    return parse_scenario(read_scenario_data(path), str(path))


def with_node_counts(scenario: Scenario, overrides: list[str]) -> Scenario:
    """`GROUP=+40`, `GROUP=-4` or `GROUP=12`: the same scenario with those groups' counts changed."""
    counts = {g.name: g.count for g in scenario.nodes}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or name not in counts:
            raise ScenarioError(f"--nodes {item!r}: use GROUP=+N, GROUP=-N or GROUP=N with a group of "
                                f"{sorted(counts)}")
        try:
            number = int(value)
        except ValueError:
            raise ScenarioError(f"--nodes {item!r}: {value!r} is not a whole number") from None
        counts[name] = max(0, counts[name] + number if value[:1] in "+-" else number)
    nodes = [g.model_copy(update={"count": counts[g.name]}) for g in scenario.nodes]
    return scenario.model_copy(update={"nodes": nodes})
