"""What only the farm can tell about a spec: whether the jobs it waits for exist, and whether any
registered node could ever run each of its layers.

A dry run asks before answering, a refused spec too (so one answer lists every problem), and a submit
asks again in its writing transaction, since nodes and jobs may have gone since. Whether a layer fits a
node is the one rule of `thresher.model.fit`, the one dispatch follows.
"""

from __future__ import annotations

from sqlalchemy import Connection

from thresher.model.checked import FarmNeeds, LayerNeeds
from thresher.model.failure_summary import plural
from thresher.model.fit import fits, gpu_indices, node_free
from thresher.model.problems import Problem
from thresher.server.db import dialects
from thresher.server.db.queries import studio as qs
from thresher.server.db.queries import submit as q

NO_NODE = "no node can run this layer"
NO_JOB = "no job with id"
NO_PROJECT = "no project named"


def farm_problems(conn: Connection, needs: FarmNeeds, *, create_projects: bool = False) -> list[Problem]:
    """Unknown jobs in depends_on, an unknown project (unless the server makes it), layers no node
    could run, and licence limits or pools that do not exist."""
    return (dependency_problems(conn, needs.depends_on)[1] + project_problems(conn, needs.project, create_projects)
            + runnable_problems(conn, needs.layers) + limit_problems(conn, needs.layers))


def project_problems(conn: Connection, project: str | None, create: bool) -> list[Problem]:
    """A project no one made (and the server does not make projects on the fly)."""
    if create or project is None or conn.execute(qs.PROJECT_BY_NAME, {"name": project}).first() is not None:
        return []
    return [{"field": "project", "message": f"{NO_PROJECT} {project!r} (an admin adds it: thresher project add "
                                           f"{project}; `thresher project list` shows those there are)"}]


def limit_problems(conn: Connection, needs: list[LayerNeeds]) -> list[Problem]:
    """Licence limits no one defined, or asked for more units per task than the farm ever has, and pools
    with no such name."""
    wanted = [layer for layer in needs if layer.limits or layer.needs.pools]
    if not wanted:
        return []
    limits = {r.name: r for r in conn.execute(qs.ALL_LIMITS)}
    pools = set(conn.execute(qs.ALL_POOL_NAMES).scalars())
    problems: list[Problem] = []
    for layer in wanted:
        where = layer.field.rsplit(".", 1)[0]
        for name, units in layer.limits:
            limit = limits.get(name)
            if limit is None:
                problems.append({"field": f"{where}.limits.{name}", "message": (
                    f"no licence limit named {name!r} (known: {', '.join(sorted(limits)) or 'none'}; "
                    f"an admin adds one: thresher limit add {name} --max N)")})
            elif units > min(limit.max_total, limit.max_per_node or limit.max_total):
                most = min(limit.max_total, limit.max_per_node or limit.max_total)
                problems.append({"field": f"{where}.limits.{name}", "message": (
                    f"{units} units per task, but at most {most} of {name} are ever in use at once")})
        for pool in sorted(layer.needs.pools - pools):
            problems.append({"field": f"{where}.pools", "message": (
                f"no pool named {pool!r} (known: {', '.join(sorted(pools))})")})
    return problems


def runnable_problems(conn: Connection, needs: list[LayerNeeds]) -> list[Problem]:
    """A layer that no registered node could ever run, even idle (when there are nodes at all)."""
    if not needs:
        return []
    rows = conn.execute(q.NODE_CAPACITIES).all()
    if not rows:
        return []
    idle = [(row, node_free(row.cores, row.memory_mb, gpu_indices(row.gpus), live=())) for row in rows]
    problems: list[Problem] = []
    for layer in needs:
        if any(fits(layer.needs, free, frozenset(row.tags or ()), row.pool) for row, free in idle):
            continue
        need, biggest = layer.needs, max(rows, key=lambda r: (r.cores, r.memory_mb))
        problems.append({"field": layer.field, "message": (
            f"{NO_NODE} (needs {plural(need.cores, 'core')}, {need.memory_mb} MB, {plural(need.gpus, 'GPU')}"
            + (f", tags {sorted(need.tags)}" if need.tags else "")
            + (f", pools {sorted(need.pools)}" if need.pools else "")
            + f"); the largest node, {biggest.name}, has {plural(biggest.cores, 'core')} and {biggest.memory_mb} MB")})
    return problems


def dependency_problems(conn: Connection, depends_on: list[int]) -> tuple[dict[int, str], list[Problem]]:
    """The states of the jobs a spec depends on, and a problem for each that does not exist."""
    if not depends_on:
        return {}, []
    found: dict[int, str] = {row.id: row.state for row in conn.execute(
        dialects.pick(conn, q.JOB_STATES), {"job_ids": sorted(set(depends_on))})}
    return found, [{"field": f"depends_on.{k}", "message": f"{NO_JOB} {j}"}
                   for k, j in enumerate(depends_on) if j not in found]


def problem_detail(problems: list[Problem]) -> str:
    """The `detail` of a refused spec's answer: what its problems have in common."""
    fields = {problem["field"].split(".")[0] for problem in problems}
    if fields == {"depends_on"} and all(p["message"].startswith(NO_JOB) for p in problems):
        return "unknown job in depends_on"
    if problems and all(p["message"].startswith(NO_NODE) for p in problems):
        return "no node could ever run part of this job"
    if fields == {"project"} and all(p["message"].startswith(NO_PROJECT) for p in problems):
        return "unknown project"
    return "invalid job spec"
