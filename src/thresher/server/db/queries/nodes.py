"""Statements about nodes: heartbeats (live figures, reconciling what agents run), registration, liveness."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from thresher.model.states import LIVE_ATTEMPT_STATES, NodeState
from thresher.server.db.queries.common import ids_in, per_dialect
from thresher.server.db.tables import attempts, jobs, layers, nodes, tasks, tokens

_NODE_IDS = ids_in(nodes.c.id, "node_ids")
_ATTEMPT_NODE_IDS = ids_in(attempts.c.node_id, "node_ids")

# Heartbeating nodes are up, with their live figures; executed with one parameter set per heartbeat.
NODE_SEEN = update(nodes).where(nodes.c.id == bindparam("b_node_id")).values(
    last_seen=bindparam("b_now"), state=NodeState.UP, cpu_percent=bindparam("b_cpu_percent"),
    memory_used_mb=bindparam("b_memory_used_mb"), load=bindparam("b_load"))

# The states of these nodes before their heartbeats are written (one back from down is news).
NODES_STATES = per_dialect(lambda d: select(nodes.c.id, nodes.c.admin_state, nodes.c.state).where(_NODE_IDS[d]))

# The live attempts of these nodes: what each holds (cores, memory, GPUs), which are to be killed, since
# when they run. Dispatch (what is free), heartbeats (the server's view of what runs) and the node
# views read it.
LIVE_ON_NODES = per_dialect(lambda d: select(attempts.c.node_id, attempts.c.id, attempts.c.task_id,
                                             attempts.c.job_id, attempts.c.state, attempts.c.cores,
                                             attempts.c.memory_mb, attempts.c.gpu_ids, attempts.c.started_at,
                                             attempts.c.booked, attempts.c.reason)
                            .where(_ATTEMPT_NODE_IDS[d], attempts.c.state.in_(LIVE_ATTEMPT_STATES)))

# The same, with what a person reads of each (the job's name, the layer, the frames, the progress):
# for the node views only, so dispatch and heartbeats never pay for the joins.
LIVE_ON_NODES_SHOWN = per_dialect(lambda d: select(
    attempts.c.node_id, attempts.c.id, attempts.c.task_id, attempts.c.job_id, attempts.c.state, attempts.c.cores,
    attempts.c.memory_mb, attempts.c.gpu_ids, attempts.c.started_at, attempts.c.booked,
    jobs.c.name.label("job_name"), layers.c.name.label("layer"), tasks.c.frames, tasks.c.progress)
    .select_from(attempts.join(tasks, tasks.c.id == attempts.c.task_id)
                 .join(layers, layers.c.id == tasks.c.layer_id).join(jobs, jobs.c.id == attempts.c.job_id))
    .where(_ATTEMPT_NODE_IDS[d], attempts.c.state.in_(LIVE_ATTEMPT_STATES)).order_by(attempts.c.id))

# How many live attempts each of these nodes has (a node with none is absent): what a filter by busy
# or idle needs of every node, without reading what each runs.
LIVE_COUNTS_ON_NODES = per_dialect(lambda d: select(attempts.c.node_id, func.count().label("n"))
                                   .where(_ATTEMPT_NODE_IDS[d], attempts.c.state.in_(LIVE_ATTEMPT_STATES))
                                   .group_by(attempts.c.node_id))

# A running task's progress as its agent parsed it from the output.
TASK_PROGRESS = update(tasks).where(tasks.c.attempt_id == bindparam("b_attempt_id")).values(
    progress=bindparam("b_progress"))


def _attempt_usage(dialect: str) -> Any:
    larger = func.max if dialect == "sqlite" else func.greatest
    return update(attempts).where(attempts.c.id == bindparam("b_attempt_id")).values(
        cpu_s=bindparam("b_cpu_s"),
        peak_rss_mb=larger(func.coalesce(attempts.c.peak_rss_mb, 0), bindparam("b_rss_mb")))


# Live CPU time and the running peak of memory of an attempt (a two-argument max is spelled per dialect).
ATTEMPT_USAGE = per_dialect(_attempt_usage)

# Nodes up but silent since before the cutoff (they are declared down).
SILENT_NODES = select(nodes.c.id, nodes.c.name).where(nodes.c.state == NodeState.UP,
                                                      nodes.c.last_seen < bindparam("cutoff"))

# A person's say over a node: enabled, draining (finishes what it runs) or disabled.
SET_ADMIN_STATE = update(nodes).where(nodes.c.id == bindparam("node_id")).values(
    admin_state=bindparam("b_admin_state"))

# A node is up or down (as its agent's heartbeats say; the admin state is a person's).
SET_NODE_STATE = update(nodes).where(nodes.c.id == bindparam("node_id")).values(state=bindparam("b_state"))

# The ids of one node's live attempts.
LIVE_ON_NODE = select(attempts.c.id).where(attempts.c.node_id == bindparam("node_id"),
                                           attempts.c.state.in_(LIVE_ATTEMPT_STATES))

# One node, whole, by name (a registering agent may take over a node of its name).
NODE_BY_NAME = select(nodes).where(nodes.c.name == bindparam("name"))

# One node's id and name.
NODE_NAME = select(nodes.c.id, nodes.c.name).where(nodes.c.id == bindparam("node_id"))

# A node's facts as its agent registered them (resources, tags, applications, instance id, up).
UPDATE_NODE = update(nodes).where(nodes.c.id == bindparam("node_id"))

# A new node.
INSERT_NODE = insert(nodes)

# A node's credentials are revoked (a new agent took its name over).
REVOKE_NODE_TOKENS = delete(tokens).where(tokens.c.node_id == bindparam("node_id"))

# A wrangler sets a node's tags (`nodes.set_tags`); its agent's next registration states its own again.
SET_NODE_TAGS = update(nodes).where(nodes.c.id == bindparam("b_node_id")).values(tags=bindparam("b_tags"))
