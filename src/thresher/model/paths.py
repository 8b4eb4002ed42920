"""Path mapping between operating systems: `Z:/projects/a.blend` on Windows is `/mnt/projects/a.blend` on Linux.

A rule says where one storage root lives on each OS: `{"from": "Z:/projects", "to": {"linux": "/mnt/projects",
"darwin": "/Volumes/projects"}}`. `to` may also be one string (the same root on every other OS). The server
applies the rules of a job to every string argument of a layer that starts with a rule's `from`, for the OS of
the node a task goes to, so an artist on Windows can submit to Linux nodes and back.

Windows roots (`Z:`, `\\\\server\\share`, `//server/share`) match without regard to case or slash direction;
POSIX roots match case-sensitively. A root only matches whole path components (`/mnt/proj` does not match
`/mnt/projects`). The rest of the path is rewritten with the target OS's separator.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

OS_NAMES = ("linux", "windows", "darwin")
_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize_os(name: str | None) -> str:
    """`Windows`, `win32`, `nt` -> `windows`; `Darwin`, `macos`, `mac` -> `darwin`; else `linux`."""
    value = (name or "linux").strip().lower()
    if value.startswith("win") or value == "nt":
        return "windows"
    if value in ("darwin", "macos", "mac", "osx"):
        return "darwin"
    return "linux" if value in ("", "posix") else value


def is_windows_path(path: str) -> bool:
    return bool(_DRIVE.match(path)) or path.startswith("\\\\") or path.startswith("//")


def _norm(path: str) -> str:
    """Forward slashes, no trailing slash (but keep a bare `/` or `Z:/`)."""
    text = path.replace("\\", "/")
    if len(text) > 1 and text.endswith("/") and not re.fullmatch(r"[A-Za-z]:/", text):
        text = text.rstrip("/") or "/"
    return text


class PathRule(BaseModel):
    """One storage root and where it is on each OS."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    from_: str = Field(..., alias="from", min_length=1, max_length=1000, description="root as submitted")
    to: str | dict[str, str] = Field(..., description="the root on each OS (`linux`, `windows`, `darwin`), "
                                                      "or one string for every OS")

    @field_validator("to")
    @classmethod
    def _to(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(value, dict):
            if not value:
                raise ValueError("give the root for at least one OS")
            out = {}
            for key, root in value.items():
                os_name = normalize_os(key)
                if os_name not in OS_NAMES:
                    raise ValueError(f"unknown OS {key!r}: use linux, windows or darwin")
                if not root.strip():
                    raise ValueError(f"empty root for {key}")
                out[os_name] = root
            return out
        if not value.strip():
            raise ValueError("empty root")
        return value

    def target(self, os_name: str) -> str | None:
        if isinstance(self.to, str):
            return self.to
        return self.to.get(normalize_os(os_name))


def map_path(path: str, rules: list[PathRule], os_name: str) -> str:
    """`path` as the node of `os_name` sees it: the first rule whose root starts the path, else unchanged."""
    if not rules or not path:
        return path
    target_os = normalize_os(os_name)
    text = _norm(path)
    for rule in rules:
        root = _norm(rule.from_)
        windows = is_windows_path(rule.from_)
        head = text[:len(root)]
        if (head.lower() == root.lower()) if windows else (head == root):
            rest = text[len(root):]
            if rest and not rest.startswith("/") and not root.endswith("/"):
                continue  # a longer name that shares the prefix, not this root
            target = rule.target(target_os)
            if target is None:
                continue
            joined = _norm(target).rstrip("/") + ("/" + rest.lstrip("/") if rest.strip("/") else "")
            if not rest and text.endswith("/"):
                joined += "/"
            if target_os == "windows":
                return joined.replace("/", "\\") if is_windows_path(target) else joined
            return joined
    return path


def map_value(value: Any, rules: list[PathRule], os_name: str) -> Any:
    """Map every string inside a JSON-like value (dicts, lists) with `map_path`."""
    if not rules:
        return value
    if isinstance(value, str):
        return map_path(value, rules, os_name)
    if isinstance(value, list):
        return [map_value(v, rules, os_name) for v in value]
    if isinstance(value, dict):
        return {k: map_value(v, rules, os_name) for k, v in value.items()}
    return value
