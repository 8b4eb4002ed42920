"""A job spec once checked: its layers with their templates and parsed arguments, its tasks, and what it
needs of the farm.

`thresher.model.inspection` builds these in one walk over the spec; the server checks `FarmNeeds` against
the database and writes the rows from the same objects, so no part of a spec is read twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, TypeVar

from thresher.model.fit import Needs
from thresher.model.frames import Chunk, frame_bounds, iter_chunk_fields
from thresher.model.spec import JobSpec, LayerSpec
from thresher.templates import Template
from thresher.templates.base import TemplateArgs

Part = TypeVar("Part")


@dataclass(frozen=True)
class LayerNeeds:
    """What each task of one layer asks of a node, and the field a "no node can run it" problem names."""

    field: str
    needs: Needs
    limits: tuple[tuple[str, int], ...] = ()  # licence limits each task consumes: (name, units)

    @classmethod
    def of(cls, where: str, layer: LayerSpec) -> LayerNeeds:
        resources = layer.resources
        return cls(where, Needs(resources.cores, resources.memory_mb, resources.gpus, frozenset(layer.tags),
                                frozenset(layer.pools)), tuple(layer.limits.items()))


@dataclass
class FarmNeeds:
    """What a spec asks of the farm, for the database to check: the jobs it waits for, and what each
    layer needs of a node."""

    depends_on: list[int] = field(default_factory=list)
    layers: list[LayerNeeds] = field(default_factory=list)
    project: str | None = None              # the project it names (which must exist, unless the server makes it)


def chunk_size(layer: LayerSpec) -> int:
    """Frames per task as written: `chunk: auto` starts at one (`model/auto_chunk.py`)."""
    return 1 if layer.chunk == "auto" else layer.chunk


@dataclass
class CheckedLayer:
    """A layer whose template accepted its arguments; `parts` are its tiles or wedge values (or one
    `None`), each rendered for every chunk of frames."""

    spec: LayerSpec
    template: Template
    args: TemplateArgs
    task_count: int
    parts: list[dict[str, Any] | None] = field(default_factory=lambda: [None])
    scout_frames: list[int] = field(default_factory=list)  # `model.scouts.pick` of its `scout`
    scout_tasks: list[int] = field(default_factory=list)   # indices of the tasks holding them (none: no scouts)
    auto_chunk: dict[str, Any] | None = None  # chunk: auto, measuring: {target_task_s, max_chunk, status}

    def chunks(self) -> Iterator[Chunk]:
        """The layer's tasks in order: each chunk of frames once per part (tile or wedge value), with the
        cores each task reserves and the layer's first and last frame (what templates pass on)."""
        cores, bounds = self.spec.resources.cores, frame_bounds(self.spec.frames)
        for index, fields, part in self.numbered(self.parts):
            yield Chunk(index, *fields, part=part, cores=cores, layer_frames=bounds)

    def numbered(self, parts: list[Part]) -> Iterator[tuple[int, tuple[str, int, int, int, int], Part]]:
        """(task index, chunk fields, part) for each chunk once per part, `parts` standing for `self.parts`
        (as they are, or as the text a task row stores): the one walk behind `chunks` and the task rows
        a submit writes, which it builds without an object per task."""
        index = 0
        for fields in iter_chunk_fields(self.spec.frames, chunk_size(self.spec)):
            for part in parts:
                yield index, fields, part
                index += 1


@dataclass
class CheckedJob:
    """A spec that passed every check that needs no database: what the farm check and the insert read."""

    spec: JobSpec
    layers: list[CheckedLayer]
    warnings: list[str] = field(default_factory=list)
    needs: FarmNeeds = field(default_factory=FarmNeeds)

    @property
    def task_count(self) -> int:
        return sum(layer.task_count for layer in self.layers)
