"""The command line an attempt ran, for the task page and `GET /attempts/{id}/command`.

The attempt row stores no command (no migration for it): it is built again by `task_commands.command_line`,
the one function dispatch builds assignments with, from the layer (which never changes after submission),
the task and the node it ran on. The node's declared applications are read as they are now: an agent that
re-registered with other `--app` paths since shows those.
"""

from __future__ import annotations

from sqlalchemy import Connection

from thresher.server import task_commands
from thresher.server.db.queries import dispatch as q
from thresher.server.errors import NotFound
from thresher.wire.jobs import AttemptCommand


def attempt_command(conn: Connection, attempt_id: int) -> AttemptCommand:
    row = conn.execute(q.ATTEMPT_FOR_COMMAND, {"attempt_id": attempt_id}).first()
    if row is None:
        raise NotFound(f"no attempt with id {attempt_id}")
    layer = task_commands.layer_commands(conn, row.layer_id)
    _chunk, line = task_commands.command_line(layer, row, row.cores, row.os, row.apps)
    return AttemptCommand(attempt_id=attempt_id, node=row.node, argv=list(line.argv), shell=bool(line.shell),
                          cwd=layer.row.cwd, env={**(layer.row.env or {}), **line.env})
