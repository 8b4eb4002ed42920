"""The node agent: registers, reports health, pulls work that fits, runs it, streams logs, reports results.

Entry point: `run_agent` (also `python -m thresher.agent`), with an `AgentSettings`.
"""

from thresher.agent.daemon import Agent, run_agent
from thresher.agent.settings import AgentSettings

__all__ = ["Agent", "AgentSettings", "run_agent"]
