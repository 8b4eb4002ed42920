"""Placeholders in a layer's arguments: `{frame}`, `{start}`, `{wedge}`, `{tile_x}`... filled in per task.

A template's `command` fills the frame placeholders of the strings it writes (`fill_placeholders`);
`Template.build` fills a task's wedge and tile values into every argument first (`fill_part`), and the
values of arguments that hold a placeholder where a number goes (`PendingArgs`: `samples: "{wedge}"`).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from thresher.model.frames import Chunk

#: Every placeholder a task's values fill in: its frames (`command`), its wedge value or tile (any argument).
NAMES = ("frame", "start", "end", "step", "frames", "count", "wedge", "wedge_index", "tile", "tile_x", "tile_y")
_PLACEHOLDER = re.compile(rf"\{{({'|'.join(NAMES)})(:[^{{}}]*)?\}}")
# what reads as a placeholder: `{word}` or `{word:spec}`, not `${VAR}` (shell), `{{x}}` or `{"a": 1}` (JSON)
_LOOKS_LIKE = re.compile(r"(?<![${])\{([A-Za-z_][A-Za-z0-9_]*)(:[^{}]*)?\}(?!\})")
_PART_PLACEHOLDER = re.compile(r"\{(wedge|wedge_index|tile|tile_x|tile_y)(:[^{}]*)?\}")
_WEDGE_PLACEHOLDER = re.compile(r"\{wedge(_index)?(:[^{}]*)?\}")
# validation errors that say "this is not a number (or bool, or list)": a placeholder may stand there
_TYPE_ERRORS = ("int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "bool_parsing",
                "bool_type", "decimal_parsing", "decimal_type", "list_type")


class PendingArgs:
    """A layer's validated arguments, some of which hold placeholders where a number goes
    (`samples: "{wedge}"`). Reads like the arguments model (placeholders read as their defaults);
    `Template.build` fills in each task's values and validates them; `model_dump` gives back the
    arguments as written, placeholders included, so they can be stored and parsed again."""

    def __init__(self, model: BaseModel, pending: dict[str, Any]) -> None:
        self.model = model
        self.pending = pending

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "pending"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return {**self.model.model_dump(**kwargs), **self.pending}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PendingArgs) and (self.model, self.pending) == (other.model, other.pending)

    def __repr__(self) -> str:
        return f"PendingArgs({self.model!r}, pending={self.pending!r})"


def has_wedge_placeholder(text: str) -> bool:
    """Whether `text` changes with the wedge value (`{wedge}` or `{wedge_index}` in it)."""
    return _WEDGE_PLACEHOLDER.search(text) is not None


def unknown_placeholder(text: str) -> str | None:
    """Why `text` holds a placeholder no task fills in (`{fram}`), left as written in every task, or None.
    Only where it is meant as one: the text uses known placeholders too, or the name is close to one (so
    `awk '{print}'` alone is left alone)."""
    uses_some = _PLACEHOLDER.search(text) is not None
    for match in _LOOKS_LIKE.finditer(text):
        name = match.group(1)
        close = difflib.get_close_matches(name, NAMES, n=1)
        if name not in NAMES and (uses_some or close):
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            return (f"unknown placeholder {{{name}}}{hint}; known: {', '.join('{' + n + '}' for n in NAMES)} "
                    "(it is passed on as written)")
    return None


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_PLACEHOLDER.search(value))
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def pending_keys(args: Any, exc: ValidationError) -> set[str]:
    """The top-level arguments whose only fault is a placeholder where a number (bool, list) goes."""
    if not isinstance(args, dict):
        return set()
    keys = set()
    for error in exc.errors():
        key = error["loc"][0] if error["loc"] else None
        if (isinstance(key, str) and key in args and _has_placeholder(args[key])
                and error["type"] in _TYPE_ERRORS):
            keys.add(key)
    return keys


def fill_value(value: Any, chunk: Chunk) -> Any:
    """A pending argument with the task's values: a lone placeholder takes the value itself (a wedge
    value 0.5 stays a number); placeholders inside text are written into it."""
    if isinstance(value, list):
        return [fill_value(v, chunk) for v in value]
    if not isinstance(value, str):
        return value
    match = _PLACEHOLDER.fullmatch(value.strip())
    if match and not match.group(2):
        values = _task_values(chunk)
        if match.group(1) in values:
            return values[match.group(1)]
    return fill_placeholders(value, chunk)


def part_values(chunk: Chunk) -> dict[str, Any]:
    """The wedge or tile values of a task (`wedge`, `wedge_index`; `tile`, `tile_x`, `tile_y`)."""
    part = chunk.part or {}
    values: dict[str, Any] = {}
    if "wedge" in part:
        values["wedge"] = part["wedge"]
        values["wedge_index"] = part.get("wedge_index", 0)
    if "tile" in part:
        col, row = part["tile"]
        values.update(tile=f"{col}_{row}", tile_x=col, tile_y=row)
    return values


def fill_part(value: Any, chunk: Chunk) -> Any:
    """Put the task's wedge / tile values into every string of the arguments (frames stay for `command`)."""
    values = part_values(chunk)
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                return match.group(0)
            return format(values[match.group(1)], (match.group(2) or ":")[1:])
        return _PART_PLACEHOLDER.sub(sub, value)
    if isinstance(value, list):
        return [fill_part(v, chunk) for v in value]
    if isinstance(value, dict):
        return {k: fill_part(v, chunk) for k, v in value.items()}
    return value


def _task_values(chunk: Chunk) -> dict[str, Any]:
    return {"frame": chunk.start, "start": chunk.start, "end": chunk.end, "step": abs(chunk.step) or 1,
            "frames": chunk.frames, "count": chunk.count, **part_values(chunk)}


def fill_placeholders(text: str, chunk: Chunk) -> str:
    """Replace {frame}, {start}, {end}, {step}, {frames}, {count} (with optional format spec, as in
    `{frame:04d}`), and {wedge}, {wedge_index}, {tile}, {tile_x}, {tile_y} for wedge and tile tasks; any
    other braces are left alone so shell and JSON text survives."""
    values = _task_values(chunk)

    def sub(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            return match.group(0)
        spec = (match.group(2) or ":")[1:]
        return format(values[match.group(1)], spec)

    return _PLACEHOLDER.sub(sub, text)
