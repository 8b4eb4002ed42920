"""The node agent: registers, reports health, pulls work that fits, runs it, streams logs, reports results.

Entry point: `run_agent` (also `python -m thresher.agent`).
"""

from thresher.agent.daemon import Agent, AgentConfig, run_agent

__all__ = ["Agent", "AgentConfig", "run_agent"]
