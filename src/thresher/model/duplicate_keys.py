"""Keys given twice in one object of a spec: refused, where a parser keeps the last one silently.

JSON and YAML parsers keep the last of two equal keys, so a spec with `layers:` written twice submitted
the second (an empty one was refused with "layers: List should have at least 1 item", which pointed
nowhere near the mistake) and a layer with `frames:` twice rendered the frames of the last, unseen. The
client refuses such a file (`client/spec.py`) and the server such a body (`POST /jobs`), naming the key,
the object it is in and its line. Pure: text in, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(eq=False)
class DuplicateKey(Exception):
    """A key given twice in one object: `field` is its place (`layers.0.name`), lines and columns count
    from 1 (None where they are not known)."""

    key: str
    field: str = ""
    line: int | None = None
    column: int | None = None
    first_line: int | None = None
    first_column: int | None = None

    @property
    def message(self) -> str:
        """`duplicate key 'layers' (line 5; first at line 2)`: where both are, the column when on one line."""
        where = ""
        if self.line is not None and self.first_line is not None:
            where = (f" (line {self.line}, column {self.column}; first at column {self.first_column})"
                     if self.line == self.first_line else f" (line {self.line}; first at line {self.first_line})")
        parent = self.field.rpartition(".")[0]
        return f"duplicate key {self.key!r}{' in ' + parent if parent else ''}{where}"

    def __str__(self) -> str:
        return self.message


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s `object_pairs_hook`: the object, or DuplicateKey (without its place) for a key given
    twice."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(key, key)
        found[key] = value
    return found


def json_duplicate(text: str | bytes) -> DuplicateKey | None:
    """The first key given twice in a JSON document, with its place where it can be found; None when there
    is none, or when the text is no JSON (its parser says why elsewhere)."""
    try:
        json.loads(text, object_pairs_hook=unique_object)
    except DuplicateKey as exc:
        try:  # JSON is YAML: its composer knows where each key is
            placed = node_duplicate(yaml.compose(text, Loader=yaml.SafeLoader))
        except (yaml.YAMLError, RecursionError, ValueError):
            placed = None
        return placed or exc
    except (ValueError, RecursionError):
        return None
    return None


def node_duplicate(root: yaml.Node | None) -> DuplicateKey | None:
    """The first key given twice in one mapping of a composed YAML document (keys alike by tag and text,
    so `1` and `"1"` differ; the keys of a `<<` merge may be overridden), walked without recursion, each
    mapping's own keys before those within its values."""
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    walked: set[int] = set()  # an alias repeats a node (`&a [*a]` holds itself): each is walked once
    while stack:
        node, path = stack.pop()
        if id(node) in walked:
            continue
        walked.add(id(node))
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                field = f"{path}.{key_node.value}" if path else str(key_node.value)
                first = seen.setdefault((key_node.tag, key_node.value), key_node)
                if first is not key_node:
                    return DuplicateKey(key_node.value, field, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1, first.start_mark.line + 1,
                                        first.start_mark.column + 1)
                children.append((value_node, field))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}.{i}" if path else str(i)) for i, item in enumerate(node.value)]
        stack.extend(reversed(children))
    return None
