"""What a person submits: the job spec, strictly validated with pydantic.

The spec is the contract between submitters (CLI, Python API, DCC plug-ins) and the server. Errors are
reported with the path of the offending field (`layers.0.frames`) so a submitter can point at it, those
found across fields too (`layers.1.name` used twice: see `thresher.model.problems`).
Template arguments are checked later by the template itself (see `thresher.templates`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from thresher.model import scouts
from thresher.model.frames import FrameSpecError, parse_frames
from thresher.model.layer_graph import cycle_problem, dependency_cycle, layer_graph_problems
from thresher.model.paths import PathRule
from thresher.model.problems import located_error
from thresher.model.sizes import MAX_CWD_CHARS, env_problem
from thresher.model.text import USER_PATTERN, NameText, UnicodeBody

MAX_CORES = 1024
MAX_MEMORY_MB = 64 * 1024 * 1024  # 64 TiB: larger is a typo, not a machine
MAX_GPUS = 64
MAX_TIMEOUT_S = 30 * 24 * 3600
MAX_TILES = 32        # per side
MAX_WEDGE_VALUES = 10_000
MAX_LAYERS = 1000     # per job
#: Row ids (jobs, tasks, attempts, nodes) are 32-bit integer columns on PostgreSQL: a larger id names nothing.
MAX_ID = 2**31 - 1

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]*$")
#: Names of pools, limits, services, folders and projects' keys: one word a CLI takes without quotes.
_KEY_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MEMORY = re.compile(r"^\s*(-?\s*\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNIT_MB = {"": 1, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


PlainText = NameText
"""Names and labels are one line of printable, visible text (the shared rule: `model/text.py`)."""
JobId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _env_sized(value: dict[str, str]) -> dict[str, str]:
    """An environment small enough to hand every task (`model/sizes.py`)."""
    problem = env_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _tags(value: list[str]) -> list[str]:
    for tag in value:
        if not _KEY_NAME.fullmatch(tag):
            raise ValueError(f"tag {tag!r}: use 1-64 letters, digits, '_', '-' or '.'")
    return sorted(set(value))


def _pools(value: list[str]) -> list[str]:
    for pool in value:
        if not _KEY_NAME.fullmatch(pool):
            raise ValueError(f"pool {pool!r}: use 1-64 letters, digits, '_', '-' or '.'")
    return sorted(set(value))


def _limits(value: dict[str, int]) -> dict[str, int]:
    for name, units in value.items():
        if not _KEY_NAME.fullmatch(name):
            raise ValueError(f"limit {name!r}: use 1-64 letters, digits, '_', '-' or '.'")
        if isinstance(units, bool) or not 1 <= units <= 10_000:
            raise ValueError(f"limit {name!r}: units per task must be between 1 and 10000")
    return dict(sorted(value.items()))


# What a layer and a service's defaults (`thresher.model.services`) both say, checked alike.
Tags = Annotated[list[str], AfterValidator(_tags)]
Pools = Annotated[list[str], AfterValidator(_pools)]
LimitUnits = Annotated[dict[str, int], AfterValidator(_limits)]
Retries = Annotated[int, Field(ge=0, le=100)]
Cores = Annotated[int, Field(ge=1, le=MAX_CORES)]
MemoryMb = Annotated[int, Field(ge=0, le=MAX_MEMORY_MB)]
Gpus = Annotated[int, Field(ge=0, le=MAX_GPUS)]
Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S)]


def parse_memory_mb(value: Any) -> int:
    """Memory as megabytes from an int (MB) or a string like `512M`, `4G`, `4GiB`, `1.5T`."""
    if isinstance(value, bool):
        raise ValueError("memory must be a number of megabytes or a size like '4G'")
    if isinstance(value, float) and value != value:  # NaN
        raise ValueError("memory must be a number of megabytes or a size like '4G'")
    if isinstance(value, (int, float)):
        if abs(value) > 2**62:
            raise ValueError(f"memory must be less than or equal to {MAX_MEMORY_MB} MB (64 TiB)")
        return int(value)
    if isinstance(value, str):
        match = _MEMORY.match(value)
        if match:
            if match.group(1).startswith("-"):
                raise ValueError(f"memory cannot be negative ({value!r})")
            return int(float(match.group(1)) * _UNIT_MB[match.group(2).lower()])
    raise ValueError(f"cannot read memory size {value!r}: use megabytes (4096) or a size like '4G'")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Dependency(_Strict):
    """One thing a layer or a job waits for, in the long form (`model/dependencies.py` is the rule):
    `{job: 12}`, `{layer: sim}`, `{job: 12, layer: render}`, `{layer: sim, frames: true}` (each task
    waits only for the tasks covering its frames), each with `on: finished` to wait for any end
    instead of success. The short forms stay: a layer name in a layer's list, a job id in a job's."""

    job: JobId | None = Field(None, description="another job (none: this job)")
    layer: str | None = Field(None, min_length=1, max_length=100, description="a layer of `job` (or of this job)")
    frames: bool = Field(False, description="frame by frame: a task waits only for the layer's tasks "
                                            "covering its frames")
    on: Literal["success", "finished"] = Field("success", description="wait for success (default) or for "
                                                                      "any end (finished, failed or killed)")

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, value: Any) -> Any:
        """YAML 1.1 (PyYAML) reads the key `on` as the boolean true: take it back as `on`."""
        if isinstance(value, dict) and True in value and "on" not in value:
            value = {("on" if key is True else key): v for key, v in value.items()}
        return value

    @model_validator(mode="after")
    def _target(self) -> "Dependency":
        if self.job is None and self.layer is None:
            raise ValueError("a dependency names a job, a layer, or both")
        if self.frames and self.layer is None:
            raise ValueError("frames: true needs a layer to follow frame by frame")
        return self


def same_job_layer(dep: Any) -> str | None:
    """The layer of the same job a dependency (short form, long form or raw) names, if it names one."""
    if isinstance(dep, str):
        return dep.strip()
    if isinstance(dep, Dependency):
        return dep.layer if dep.job is None else None
    if isinstance(dep, dict) and dep.get("job") is None and isinstance(dep.get("layer"), str):
        return str(dep["layer"]).strip()
    return None


def _form(value: Any) -> str:
    return "long form" if isinstance(value, (dict, Dependency)) else "short form"


# A layer's dependency: a layer name of its job, or the long form; a job's: a job id, or the long form.
LayerDependency = Annotated[Union[Annotated[str, Tag("short form")], Annotated[Dependency, Tag("long form")]],
                            Discriminator(_form)]
JobDependency = Annotated[Union[Annotated[JobId, Tag("short form")], Annotated[Dependency, Tag("long form")]],
                          Discriminator(_form)]


class Resources(_Strict):
    """What one task of a layer needs on a node while it runs."""

    cores: Cores = 1
    memory_mb: MemoryMb = 512
    memory: int | str | None = Field(None, exclude=True, description="memory as a size like '4G' or '512M' "
                                                                "(or megabytes); sets memory_mb")
    gpus: Gpus = 0

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int | None:
        if value is None:
            return None
        megabytes = parse_memory_mb(value)
        if megabytes < 0:
            raise ValueError(f"memory cannot be negative ({value!r})")
        if megabytes > MAX_MEMORY_MB:
            raise ValueError(f"memory must be less than or equal to {MAX_MEMORY_MB} MB (64 TiB)")
        return megabytes

    @model_validator(mode="after")
    def _memory_alias(self) -> "Resources":
        if self.memory is not None:
            if "memory_mb" in self.model_fields_set:
                raise ValueError("give either 'memory' or 'memory_mb', not both")
            self.memory_mb = int(self.memory)  # read as megabytes by `_memory`
            self.memory = None
        return self


class LayerSpec(_Strict):
    """One kind of work inside a job: a template, its arguments, frames, chunking and needs."""

    name: str = Field(..., min_length=1, max_length=100)
    template: str = Field("command", min_length=1, max_length=100)
    args: dict[str, Any] = Field(default_factory=dict)
    frames: str = "1"
    chunk: int | Literal["auto"] = Field(1, description="frames per task (1 to 1,000,000), or auto: sized from "
                                         "measured frame times (model/auto_chunk.py)")
    target_task_s: float | None = Field(None, ge=1, le=7 * 86400, description="with chunk: auto, the seconds a "
                                        "task should last (default 600)")
    max_chunk: int | None = Field(None, ge=1, le=1_000_000, description="with chunk: auto, the most frames per "
                                  "task (default 100)")
    resources: Resources = Field(default_factory=Resources)
    tags: Tags = Field(default_factory=list)
    pools: Pools = Field(default_factory=list, description="pools (clusters) its tasks may run in; "
                                                           "any pool when empty")
    limits: LimitUnits = Field(default_factory=dict, description="licence limits each task consumes, "
                                                                 "name -> units (`{nuke: 1}`)")
    service: str | None = Field(None, max_length=64, description="the service whose defaults it takes "
                                                                 "(its own values win)")
    blocklist_after: int | None = Field(None, ge=1, le=1000, description="failed attempts of the job on one "
                                        "node after which that node gets none of its tasks (server default 3)")
    retries: Retries = 2
    timeout: Timeout | None = Field(None, description="seconds")
    depends_on: list[LayerDependency] = Field(default_factory=list, description="layers (names, or "
                                               "{layer, job, frames, on}) or jobs ({job}) it waits for")
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = Field(None, max_length=MAX_CWD_CHARS)
    tiles: tuple[int, int] | None = Field(None, description="split every frame into X by Y tiles rendered as "
                                                            "separate tasks, then stitched ([x, y] or 'XxY')")
    wedge: list[str | int | float] | None = Field(None, description="render the frames once per value; "
                                                                    "{wedge} and {wedge_index} are filled in")
    scout: str | None = Field(None, max_length=2000, description="frames rendered first, the rest held until "
                              "they succeed: fml:N (first, middle, last), auto:N, or a list like '1,50,100' "
                              "(see model/scouts.py)")
    scout_release: Literal["auto", "manual"] = Field("auto", description="auto: the held tasks go once every "
                                                     "scout task succeeded; manual: once a person releases them")

    def layer_names(self) -> list[str]:
        """The layers of its own job it waits for, whichever form names them."""
        return [name for name in map(same_job_layer, self.depends_on) if name is not None]

    @field_validator("tiles", mode="before")
    @classmethod
    def _tiles(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", value)
            if not match:
                raise ValueError(f"cannot read tiles {value!r}: use 'XxY' like '2x2' or [2, 2]")
            value = (int(match.group(1)), int(match.group(2)))
        elif isinstance(value, dict):
            value = (value.get("x"), value.get("y"))
        return value

    @field_validator("tiles")
    @classmethod
    def _tile_counts(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None:
            x, y = value
            if not (1 <= x <= MAX_TILES and 1 <= y <= MAX_TILES):
                raise ValueError(f"tiles must be between 1 and {MAX_TILES} per side")
            if x * y < 2:
                raise ValueError("1x1 tiles is the whole frame: leave tiles out")
        return value

    @field_validator("wedge")
    @classmethod
    def _wedge(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None:
            if not value:
                raise ValueError("wedge needs at least one value")
            if len(value) > MAX_WEDGE_VALUES:
                raise ValueError(f"wedge holds {len(value):,} values; the limit is {MAX_WEDGE_VALUES:,}")
            if any(isinstance(v, bool) for v in value):
                raise ValueError("wedge values are strings or numbers")
        return value

    @model_validator(mode="after")
    def _variants(self) -> "LayerSpec":
        if self.tiles is not None and self.wedge is not None:
            raise ValueError("a layer has either tiles or a wedge, not both (use two layers)")
        if self.chunk != "auto" and (self.target_task_s is not None or self.max_chunk is not None):
            raise ValueError("target_task_s and max_chunk go with chunk: auto")
        return self

    @field_validator("chunk", mode="before")
    @classmethod
    def _chunk(cls, value: Any) -> Any:
        """One message for the one field, whichever form was meant (not one per member of the union)."""
        if value == "auto":
            return value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("give a whole number of frames per task, or auto")
        if value < 1:
            raise ValueError("Input should be greater than or equal to 1")
        if value > 1_000_000:
            raise ValueError("Input should be less than or equal to 1000000")
        return value

    @field_validator("scout", mode="before")
    @classmethod
    def _scout(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            try:
                return scouts.check_spec(value)
            except scouts.ScoutSpecError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("use ASCII letters (A-Z, a-z), digits, spaces, '_', '-' and '.', starting with a "
                             "letter, digit or '_'")
        return value

    @field_validator("frames", mode="before")
    @classmethod
    def _frames(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("frames must be a frame spec string like '1-100'")
        try:
            parse_frames(value)
        except FrameSpecError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("service")
    @classmethod
    def _service(cls, value: str | None) -> str | None:
        if value is not None and not _KEY_NAME.fullmatch(value):
            raise ValueError(f"service {value!r}: use 1-64 letters, digits, '_', '-' or '.'")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"environment variable name {key!r} is not valid")
        return _env_sized(value)


class JobSpec(_Strict, UnicodeBody):
    """A job as submitted: who, for which show, how urgent, and its layers."""

    name: PlainText = Field(..., min_length=1, max_length=200)
    project: PlainText = Field("default", min_length=1, max_length=100)
    sequence: PlainText | None = Field(None, max_length=100)
    shot: PlainText | None = Field(None, max_length=100)
    folder: str | None = Field(None, max_length=64, description="the folder of its project it goes into "
                                                               "(made when new); none: the project's own")
    max_failures: int | None = Field(None, ge=1, le=1_000_000, description="failed attempts after which the "
                                     "job starts nothing new (server default)")
    owner: str | None = Field(None, pattern=USER_PATTERN, description="whose job it is (a wrangler or admin "
                              "submitting for someone; made a user when new): a user name")
    priority: int = Field(50, ge=0, le=1000)
    depends_on: list[JobDependency] = Field(default_factory=list, description="ids of jobs that must "
                                                 "succeed first (or {job, layer, on})")
    env: dict[str, str] = Field(default_factory=dict)
    path_mapping: list[PathRule] = Field(default_factory=list, description="storage roots per OS, applied to "
                                         "the layers' arguments for the OS of the node that runs each task")
    layers: list[LayerSpec] = Field(..., min_length=1, max_length=MAX_LAYERS)

    def job_ids(self) -> list[int]:
        """The jobs the job itself waits for, in the order of `depends_on` (long forms by their job)."""
        return [dep if isinstance(dep, int) else (dep.job or 0) for dep in self.depends_on]

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return _env_sized(value)

    @field_validator("owner", mode="before")
    @classmethod
    def _owner(cls, value: Any) -> Any:
        """A blank owner names no one (the submitter's job), as it always did; any other is a user name."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and not _KEY_NAME.fullmatch(value):
            raise ValueError(f"folder {value!r}: use 1-64 letters, digits, '_', '-' or '.'")
        return value

    @model_validator(mode="after")
    def _layer_graph(self) -> "JobSpec":
        """Names used twice, dependencies on no layer and cycles, each at its layer's field."""
        problems = layer_graph_problems([(layer.name, layer.depends_on) for layer in self.layers])
        problems += [(("depends_on", k), "a job's dependency names a job (frames need a layer's)", dep)
                     for k, dep in enumerate(self.depends_on)
                     if isinstance(dep, Dependency) and (dep.job is None or dep.frames)]
        if not problems:
            cycle = dependency_cycle({layer.name: layer.layer_names() for layer in self.layers})
            problems = [cycle_problem(cycle)] if cycle else []
        if problems:
            raise located_error(type(self).__name__, problems)
        return self
