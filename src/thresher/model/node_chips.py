"""What a node counts as on the overview, the nodes page and `thresher nodes --state`: up, busy, idle,
down, disabled, draining. One rule, so the counts, the page's filter and the CLI's agree.

A node may count under several (up and busy; down and disabled). Busy and idle are of up nodes; an
idle node takes work (enabled), so a draining or disabled node with nothing to run is not idle.
"""

from __future__ import annotations

from thresher.model.states import NodeAdminState, NodeState

NODE_CHIPS = ("up", "busy", "idle", "down", "disabled", "draining")


def counts_as(chip: str, *, state: str, admin_state: str, running: int) -> bool:
    """Whether a node in `state` (up, down), `admin_state` (enabled, draining, disabled), running
    `running` attempts, counts under `chip`."""
    up = state == NodeState.UP
    if chip == "up":
        return up
    if chip == "down":
        return not up
    if chip == "busy":
        return up and running > 0
    if chip == "idle":
        return up and running == 0 and admin_state == NodeAdminState.ENABLED
    if chip in (NodeAdminState.DISABLED, NodeAdminState.DRAINING):
        return admin_state == chip
    raise ValueError(f"unknown node chip {chip!r}: use one of {', '.join(NODE_CHIPS)}")


def name_holds(needle: str, name: str, hostname: str | None) -> bool:
    """Whether a node's name or host name holds `needle`, in any case ("" holds in every node): the
    nodes page's name filter and `thresher nodes --name`."""
    needle = needle.casefold()
    return not needle or needle in name.casefold() or needle in (hostname or "").casefold()
