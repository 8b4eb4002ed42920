"""Conditions that retrying cannot fix, and the exit codes the agent process ends with.

Everything else (an unreachable server, a refused call, a full disk) the agent rides through; these
need a person: a refused enrolment, a node name another agent holds, a state folder in use.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CONFIG = 2  # refused enrolment, name taken, state folder in use, bad settings: a person must act


class AgentFatal(Exception):
    """A condition that retrying cannot fix (the agent exits with EXIT_CONFIG)."""
