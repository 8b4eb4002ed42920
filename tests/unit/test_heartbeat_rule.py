"""The rule for how an agent proves it is alive (`model/heartbeat_rule.py`): an idle agent's poll counts
as its heartbeat where the server says so, within a third of the node timeout; busy agents and agents
of older servers always beat."""

from __future__ import annotations

import math

from thresher.model.heartbeat_rule import heartbeat_due, poll_beat_wait


def test_an_idle_poll_is_held_at_most_a_third_of_the_node_timeout() -> None:
    assert poll_beat_wait(20.0, 60.0) == 20.0
    assert poll_beat_wait(20.0, 30.0) == 10.0
    assert poll_beat_wait(20.0, 3.0) == 1.0
    assert poll_beat_wait(20.0, None) == 20.0  # no timeout said: the usual wait


def test_an_idle_agent_rests_its_heartbeat_while_its_polls_carry_one() -> None:
    rest = dict(heartbeat_s=5.0, poll_beat_s=20.0)
    assert not heartbeat_due(idle=True, since_last_beat_s=0.0, **rest)
    assert not heartbeat_due(idle=True, since_last_beat_s=24.9, **rest)  # the next poll is due any moment
    assert heartbeat_due(idle=True, since_last_beat_s=25.0, **rest)  # the poll failed or is held too long
    assert heartbeat_due(idle=True, since_last_beat_s=math.inf, **rest)  # nothing sent yet


def test_busy_agents_and_agents_of_older_servers_always_beat() -> None:
    assert heartbeat_due(idle=False, since_last_beat_s=0.0, heartbeat_s=5.0, poll_beat_s=20.0)
    assert heartbeat_due(idle=True, since_last_beat_s=0.0, heartbeat_s=5.0, poll_beat_s=None)


def test_a_live_idle_node_is_seen_well_within_the_node_timeout() -> None:
    """The longest silence of a live idle agent: a poll's length plus one heartbeat period (the agent
    lowers its period to a third of the timeout), two thirds of the timeout at most."""
    for timeout, heartbeat_s, wait in ((60.0, 5.0, 20.0), (3.0, 1.0, 20.0), (10.0, 5.0, 30.0)):
        longest = poll_beat_wait(wait, timeout) + min(heartbeat_s, timeout / 3)
        assert longest <= timeout * 2 / 3 + 1e-9
