"""The small graph of a job's dependencies on its page: layers and jobs as boxes, what waits to the right
of what it waits for, drawn as SVG on the server (no script, no library).

Placement is by depth: a box's column is one more than the deepest of the boxes it waits for, so every
line runs left to right; within a column, boxes keep the order they were met in. A job with more boxes
than `MAX_BOXES` shows no graph (the list beside it says everything, and a wall of boxes says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any, Iterable

MAX_BOXES = 40
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 34, 60, 14, 6


@dataclass(frozen=True)
class Box:
    label: str
    href: str
    state: str
    x: int
    y: int
    current: bool  # a layer of the job whose page this is


@dataclass(frozen=True)
class Line:
    x1: int
    y1: int
    x2: int
    y2: int
    mode: str  # "success" or "finished"


@dataclass(frozen=True)
class Graph:
    width: int
    height: int
    boxes: list[Box]
    lines: list[Line]
    box_w: int = BOX_W
    box_h: int = BOX_H


Key = tuple[int, str]  # (job, layer or "" for the whole job)


def _label(key: Key, names: dict[int, str]) -> str:
    job, layer = key
    return f"#{job} {layer}" if layer else f"job #{job} {names.get(job, '')}".rstrip()


def layout(job_id: int, edges: Iterable[dict[str, Any]], layer_states: dict[str, str]) -> Graph | None:
    """The graph of these dependency edges (the `DependencyEdge` shape, as dicts), or None when there is
    nothing to draw or too much. `layer_states`: the states of the job's own layers (their boxes' colour);
    another job's box is coloured by what the edge waits for (`target_state`: that layer's state, or the
    job's for a whole job), not by its job's state."""
    waits: dict[Key, list[Key]] = {}
    states: dict[Key, str] = {(job_id, name): state for name, state in layer_states.items()}
    names: dict[int, str] = {}
    modes: dict[tuple[Key, Key], str] = {}
    order: list[Key] = []
    for e in edges:
        waiter: Key = (e["waiter_job"], e.get("waiter_layer") or "")
        target: Key = (e["target_job"], e.get("target_layer") or "")
        names[e["target_job"]] = e.get("target_job_name") or ""
        if (not target[1] or target[0] != job_id) and e.get("kind") != "task":  # a task's state is not its box's
            states.setdefault(target, e.get("target_state") or "")
        for key in (waiter, target):
            if key not in waits:
                waits[key] = []
                order.append(key)
        if target not in waits[waiter]:
            waits[waiter].append(target)
        modes[waiter, target] = e.get("mode") or "success"
    if not order or len(order) > MAX_BOXES:
        return None
    depth: dict[Key, int] = {}
    try:
        ranked = list(TopologicalSorter(waits).static_order())  # targets before their waiters
    except CycleError:  # refused at submit; draw flat rather than fail the page
        ranked = order
    for key in ranked:
        depth[key] = max((depth.get(t, 0) + 1 for t in waits.get(key, [])), default=0)
    rows: dict[int, int] = {}
    place: dict[Key, tuple[int, int]] = {}
    for key in order:
        column = depth.get(key, 0)
        row = rows.get(column, 0)
        rows[column] = row + 1
        place[key] = (PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    boxes = [Box(_label(key, names), f"/jobs/{key[0]}", states.get(key, ""), *place[key], current=key[0] == job_id)
             for key in order]
    lines = [Line(place[target][0] + BOX_W, place[target][1] + BOX_H // 2, place[waiter][0],
                  place[waiter][1] + BOX_H // 2, modes[waiter, target])
             for waiter in order for target in waits[waiter]]
    columns = max(depth.values(), default=0) + 1
    return Graph(width=2 * PAD + columns * BOX_W + (columns - 1) * GAP_X,
                 height=2 * PAD + max(rows.values()) * BOX_H + (max(rows.values()) - 1) * GAP_Y,
                 boxes=boxes, lines=lines)
