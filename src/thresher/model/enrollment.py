"""**The** rule for enrollment tokens: whether one may still enrol a node (and, when not, the reason the
agent logs), the state a listing shows, and which pool a registering node ends up in.

An enrollment token is what an admin hands to the machines they set up (`thresher enroll-token
create`): one-time (one registration, then used up) or reusable (until it expires or is revoked). A
registration made with it counts as a use in the registration's own transaction (`server/enrollment.
consume`, a compare-and-set on the use count, so two agents racing with one one-time token register
exactly one node), after the node's name was judged (a known node's name, 409, uses nothing). A used
token still lets its own agent ask again for the credential whose answer it lost (`REISSUE`).
A used token is still a known credential (it may ask who it is); only registering refuses it.

The pool: **the token's pool wins** over the agent's `--pool`. The token is the admin's word on where
the machines it enrols serve; the agent's flag is that machine's local configuration, and an agent
handed a token for the `gpu` pool must not land elsewhere because of a flag. A token without a pool
leaves it to the agent (`--pool`, else `default`), as before. The node's own credential remembers that
its pool came from a token (`tokens.pool`), so the agent's `--pool` does not move the node later,
when it registers again with that credential; an admin still moves it (`thresher node pool`).

Pure: no I/O; the times are the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EnrollState(StrEnum):
    ACTIVE = "active"
    USED = "used"        # a one-time token that enrolled its node (or a token that made all its uses)
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class EnrollToken:
    """What the rule weighs of one enrollment token (a row of `tokens` of kind `enroll`)."""

    name: str
    revoked_at: datetime | None
    expires_at: datetime | None
    max_uses: int | None  # 1: one-time; None: reusable
    used_count: int


def state(token: EnrollToken, now: datetime) -> EnrollState:
    """Revoked before expired before used: the admin's act is what a listing says first."""
    if token.revoked_at is not None:
        return EnrollState.REVOKED
    if token.expires_at is not None and token.expires_at <= now:
        return EnrollState.EXPIRED
    if token.max_uses is not None and token.used_count >= token.max_uses:
        return EnrollState.USED
    return EnrollState.ACTIVE


_ASK = "ask an admin for a new one (`thresher enroll-token create`)"


def refusal(token: EnrollToken, now: datetime, *, reissue: bool = False) -> str | None:
    """None when the token may enrol a node now; else the reason (the 401's detail, which the agent logs).

    `reissue`: the agent it enrolled asks again for the credential whose answer it lost (same instance
    id, the credential never used: `model/node_claim.py`); a used token still serves it (not a new
    node), an expired or revoked one does not (the admin's word)."""
    found = state(token, now)
    if found == EnrollState.ACTIVE or (reissue and found == EnrollState.USED):
        return None
    if found == EnrollState.REVOKED:
        when = f" at {_moment(token.revoked_at)}" if token.revoked_at else ""
        return f"enrollment token {token.name!r} was revoked{when}: {_ASK}"
    if found == EnrollState.EXPIRED:
        return f"enrollment token {token.name!r} expired at {_moment(token.expires_at)}: {_ASK}"
    if token.max_uses == 1:
        return f"enrollment token {token.name!r} was one-time and has enrolled its node already: {_ASK}"
    return f"enrollment token {token.name!r} has made all its {token.max_uses} registrations: {_ASK}"


def _moment(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "?"


def registration_pool(kind: str, token_pool: str | None, agent_pool: str | None) -> str | None:
    """The pool a registration sets (None: the node keeps the one it has; a new node joins `default`).

    `kind` is the registering token's: with an enrollment token (or an admin's, which names no pool)
    the token's pool wins over the agent's; with the node's own credential, one enrolled into a
    token's pool keeps the pool it is in (the agent's flag does not move it), any other takes the
    agent's flag as before."""
    if kind == "node":
        return None if token_pool else agent_pool
    return token_pool or agent_pool
