"""A claimed task's command, built for the node that runs it: the one place it is built, both for the
assignment that dispatch (`server/dispatch.py`) sends and for the task page (`server/commands.py`)
that shows what was sent. A layer's parsed template and path rules are kept per database engine,
since layers never change after submission and every assignment needs its layer's.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from thresher.model.dispatch_rule import Candidate
from thresher.model.frames import Chunk, frame_bounds
from thresher.model.paths import PathRule
from thresher.server.db.queries import dispatch as q
from thresher.templates import Template, get_template
from thresher.templates.base import Target


@dataclass(frozen=True)
class _LayerCommands:
    """What building a layer's commands needs; layers never change after submission, so it is cached."""

    row: Any
    template: Template
    args: Any
    rules: list[PathRule]
    frame_bounds: tuple[int, int]


# One cache per database engine: layer ids are only unique within one database.
_layer_caches: "weakref.WeakKeyDictionary[Any, OrderedDict[int, _LayerCommands]]" = weakref.WeakKeyDictionary()
_LAYER_CACHE_SIZE = 4096


def _layer_commands(conn: Connection, layer_id: int) -> _LayerCommands:
    _layer_cache = _layer_caches.setdefault(conn.engine, OrderedDict())
    cached = _layer_cache.get(layer_id)
    if cached is None:
        row = conn.execute(q.LAYER_FOR_COMMANDS, {"layer_id": layer_id}).one()
        template = get_template(row.template)
        rules = [PathRule.model_validate(rule) for rule in (row.path_mapping or [])]
        cached = _LayerCommands(row, template, template.parse_args(row.args), rules, frame_bounds(row.frames))
        _layer_cache[layer_id] = cached
        if len(_layer_cache) > _LAYER_CACHE_SIZE:
            _layer_cache.popitem(last=False)
    return cached


def assignment(conn: Connection, node: Any, attempt_id: int, c: Candidate, gpu_ids: list[int],
                task: Any) -> dict[str, Any]:
    """The assignment of one claimed task, its command built for this node: paths mapped for its OS,
    executables it declared, the task's tile or wedge value."""
    layer = _layer_commands(conn, c.layer_id)
    chunk, line = command_line(layer, task, c.needs.cores, node.os, node.apps)
    return {
        "attempt_id": attempt_id, "task_id": c.task_id, "job_id": c.job_id, "job_name": layer.row.job_name,
        "layer": layer.row.name, "frames": chunk.frames, "argv": line.argv, "shell": line.shell,
        "env": {**(layer.row.env or {}), **line.env}, "cwd": layer.row.cwd, "timeout_s": layer.row.timeout,
        "gpus": gpu_ids, "outputs": line.outputs, "progress_patterns": line.progress_patterns,
        "error_patterns": line.error_patterns, "memory_mb": c.needs.memory_mb,
        "cores": c.needs.cores,
    }


def command_line(layer: _LayerCommands, task: Any, cores: int, node_os: str, apps: Any) -> tuple[Chunk, Any]:
    """A task's command for a node, as its assignment carries it: the one place it is built, so that the
    task page (`server/commands.py`) shows what was sent without storing it on the attempt."""
    chunk = Chunk(task.idx, task.frames, task.frame_start, task.frame_end, task.frame_step, task.frame_count,
                  task.part or None, cores=cores, layer_frames=layer.frame_bounds)
    return chunk, layer.template.build(layer.args, chunk, Target(os=node_os, apps=dict(apps or {})), layer.rules)


def layer_commands(conn: Connection, layer_id: int) -> _LayerCommands:
    """What building a layer's commands needs (cached; layers never change after submission)."""
    return _layer_commands(conn, layer_id)
