"""Checks of a submitted JSON document before any model reads it: how deep it nests, and NUL characters.

Both run in one walk without recursion, first, so that no later check (ours, pydantic's, a template's)
walks a hostile document into a RecursionError, and so that a NUL is reported at its own field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from thresher.model.problems import Problem

MAX_NESTING = 32  # levels of objects and lists in a spec; real specs use fewer than ten
NUL_MESSAGE = "must not contain NUL (\\x00) characters"


@dataclass(frozen=True)
class _NulKey:
    """A key holding NUL, met in the walk where its value would be."""

    key: str


def document_problems(value: Any, limit: int = MAX_NESTING) -> tuple[Problem | None, list[Problem]]:
    """What is wrong with a document as a whole, walked once in document order: the first place it nests
    objects or lists deeper than `limit` (None if nowhere; when there is one, nothing else is worth
    checking in such a document), and every string (key or value) holding a NUL character, at its field.

    No database text column can hold NUL, and no command line either (exec stops at the first NUL), so
    a spec with one is refused whole, with the place of each."""
    nul: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, _NulKey):
            nul.append({"field": path or "(body)", "message": f"key {item.key!r} {NUL_MESSAGE}"})
            continue
        if isinstance(item, str):
            if "\x00" in item:
                nul.append({"field": path or "(body)", "message": NUL_MESSAGE})
            continue
        if not isinstance(item, (dict, list, tuple)):
            continue
        if depth >= limit:
            return {"field": path or "(body)", "message": f"nested more than {limit} levels deep"}, nul
        children: list[tuple[Any, str, int]] = []
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(key, str) and "\x00" in key:  # said at its place in the walk; its value is not read
                children.append((_NulKey(key), path, depth + 1))
                continue
            children.append((child, f"{path}.{key}" if path else str(key), depth + 1))
        stack.extend(reversed(children))
    return None, nul
