"""What a person's enable, disable and drain of a node writes (`server/api/people.py`)."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update

from thresher.model.states import LIVE_ATTEMPT_STATES
from thresher.server.db.tables import attempts, nodes

# Set a node's admin state (enabled, disabled, draining).
SET_ADMIN_STATE = update(nodes).where(nodes.c.id == bindparam("node_id")).values(admin_state=bindparam("admin_state"))

# The live attempts of one node (a disabled node gives them back).
LIVE_ATTEMPTS_OF_NODE = select(attempts.c.id).where(attempts.c.node_id == bindparam("node_id"),
                                                    attempts.c.state.in_(LIVE_ATTEMPT_STATES))
