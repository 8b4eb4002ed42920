"""**The** rule for how an agent proves it is alive: by a heartbeat, or by its idle long poll.

An idle agent (nothing running, no report waiting in its spool) already holds a long poll for work
open at all times; a server that says so at registration (`Registered.poll_heartbeat`) counts a poll
that carries the heartbeat's body (`WorkAsk.heartbeat`) as a heartbeat: it records the node's figures
and reconciles what it runs, as `POST /agent/heartbeat` does. Such an agent sends separate heartbeats
only while it is busy (their answers carry kill lists and live progress) or when no beat of either
kind went out for a poll's length plus one heartbeat period (a poll that failed, a server that holds
it too long). So a 5,000-node idle farm makes one request per node per poll instead of five.

The server still declares a node down after `node_timeout_s` of silence (its liveness sweep is
unchanged): a poll that carries a beat is sent at most `poll_beat_wait` apart, a third of the node
timeout at most, the same margin the heartbeat period keeps (`agent/daemon.py`), so a live idle node
is seen at least every `poll_beat_wait + heartbeat_s` seconds (two thirds of the timeout), and a dead
one, sending nothing, still goes down.
"""

from __future__ import annotations


def poll_beat_wait(work_wait_s: float, node_timeout_s: float | None) -> float:
    """How long an idle agent's poll that carries its heartbeat may be held: its usual wait, but never
    more than a third of the server's node timeout (three beats within it)."""
    if node_timeout_s is None or node_timeout_s <= 0:
        return work_wait_s
    return min(work_wait_s, node_timeout_s / 3)


def heartbeat_due(*, idle: bool, since_last_beat_s: float, heartbeat_s: float, poll_beat_s: float | None) -> bool:
    """Whether the agent sends a separate heartbeat now.

    `since_last_beat_s`: seconds since the agent last sent its figures (a heartbeat, or a poll carrying
    them, counted from when it was sent; a failed send does not count). `poll_beat_s`: the held poll's
    length when the server counts polls as heartbeats (`poll_beat_wait`), else None (an older server:
    always beat)."""
    if poll_beat_s is None or not idle:
        return True
    return since_last_beat_s >= poll_beat_s + heartbeat_s
