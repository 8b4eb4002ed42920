"""The template interface: how an application turns (arguments, chunk) into a command.

A template is data in, data out, with no I/O, so the server can build commands at dispatch time and
`submit --dry-run` can show them. Studios add their own through the `thresher.templates` entry point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from thresher.model.frames import Chunk, expand_padding, has_padding


@dataclass
class CommandLine:
    """Everything an agent needs to run one task and judge its result."""

    argv: list[str]
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    progress_patterns: list[str] = field(default_factory=list)
    error_patterns: list[str] = field(default_factory=list)


class Template:
    """Base class: subclasses set `name`, `description`, `Args` and implement `command`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Args: ClassVar[type[BaseModel]]

    def parse_args(self, args: dict[str, Any]) -> BaseModel:
        """Validate a layer's `args`; raises pydantic.ValidationError naming the bad field."""
        return self.Args.model_validate(args)

    def command(self, args: Any, chunk: Chunk) -> CommandLine:
        raise NotImplementedError

    def warnings(self, args: Any) -> list[str]:
        """Things that are valid but probably not what the submitter meant."""
        return []

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "args": self.Args.model_json_schema()}


_PLACEHOLDER = re.compile(r"\{(frame|start|end|step|frames|count)(:[^{}]*)?\}")


def fill_placeholders(text: str, chunk: Chunk) -> str:
    """Replace {frame}, {start}, {end}, {step}, {frames}, {count} (with optional format spec, as in
    `{frame:04d}`); any other braces are left alone so shell and JSON text survives."""
    values: dict[str, Any] = {
        "frame": chunk.start, "start": chunk.start, "end": chunk.end,
        "step": abs(chunk.step) or 1, "frames": chunk.frames, "count": chunk.count,
    }

    def sub(match: re.Match[str]) -> str:
        spec = (match.group(2) or ":")[1:]
        return format(values[match.group(1)], spec)

    return _PLACEHOLDER.sub(sub, text)


def expand_outputs(patterns: list[str], chunk: Chunk) -> list[str]:
    """The files a chunk must write: each padded pattern once per frame, others once."""
    files: list[str] = []
    for pattern in patterns:
        pattern = fill_placeholders(pattern, chunk)
        if has_padding(pattern):
            files.extend(expand_padding(pattern, frame) for frame in chunk.frame_list())
        else:
            files.append(pattern)
    return files
