"""The dependencies between the layers of a job: names used twice, dependencies on no layer, cycles.

Cycles are found with `graphlib` (no recursion), so the largest job a spec may hold (1,000 layers, each
waiting for the next) is checked like a small one.
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Any

from thresher.model.problems import Location, did_you_mean

#: A problem in the layer graph: (location in the job, message, offending value).
GraphProblem = tuple[Location, str, Any]


def layer_graph_problems(layers: list[tuple[Any, Any]]) -> list[GraphProblem]:
    """Every duplicate layer name and dependency on a missing layer (or on itself), given (name,
    depends_on) per layer.

    Takes raw values too, so that a spec with other errors still hears about all of these at once."""
    problems: list[GraphProblem] = []
    seen: set[str] = set()
    for i, (name, _deps) in enumerate(layers):
        if isinstance(name, str):
            if name.strip() in seen:
                problems.append((("layers", i, "name"), f"layer name {name.strip()!r} is used twice", name))
            seen.add(name.strip())
    for i, (name, deps) in enumerate(layers):
        for dep in deps if isinstance(deps, list) else []:
            dep = _layer_named(dep)
            if dep is None:
                continue
            if isinstance(name, str) and dep.strip() == name.strip():
                problems.append((("layers", i, "depends_on"), "a layer cannot depend on itself", deps))
            elif dep.strip() not in seen:
                problems.append((("layers", i, "depends_on"),
                                 f"no layer named {dep.strip()!r} in this job{did_you_mean(dep.strip(), seen)}", deps))
    return problems


def _layer_named(dep: Any) -> str | None:
    """The layer of this job a dependency names: a name, or `{layer: name}` without a `job`."""
    if isinstance(dep, str):
        return dep
    layer = getattr(dep, "layer", None) if not isinstance(dep, dict) else dep.get("layer")
    job = getattr(dep, "job", None) if not isinstance(dep, dict) else dep.get("job")
    return layer if isinstance(layer, str) and job is None else None


def dependency_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of layers that wait for each other, as `[a, b, a]` (a depends on b, b on a), starting at
    the first of them in the job; None when the layers can run in some order.

    `graph` maps every layer to the layers it depends on, all of them in `graph`."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        # graphlib lists each layer before the one that depends on it; a person reads "depends on"
        found: list[str] = list(reversed(exc.args[1]))[:-1]
        order = {name: i for i, name in enumerate(graph)}
        first = min(range(len(found)), key=lambda i: order[found[i]])
        cycle = found[first:] + found[:first]
        return [*cycle, cycle[0]]
    return None


def cycle_problem(cycle: list[str]) -> GraphProblem:
    """The problem a dependency cycle is: at the job's layers, naming each layer of the cycle."""
    return ("layers",), "dependency cycle " + " -> ".join(cycle), cycle
