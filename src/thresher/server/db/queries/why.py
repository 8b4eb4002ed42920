"""Statements of the pending reasons (`server/why.py`): what the farm can run, and what a job waits for."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from thresher.server.db.tables import node_failures, nodes

# Every registered node with what it could ever run and whether it may take work now.
NODES = select(nodes.c.id, nodes.c.name, nodes.c.cores, nodes.c.memory_mb, nodes.c.gpus, nodes.c.tags,
               nodes.c.pool, nodes.c.state, nodes.c.admin_state)

# The nodes this job's blocklist names.
BLOCKED_NODES_OF_JOB = select(node_failures.c.node_id).where(node_failures.c.job_id == bindparam("job_id"),
                                                             node_failures.c.blocked.is_(True))
