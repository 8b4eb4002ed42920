"""The rule for who may register under a node's name with a token that is not that node's own.

A node's name is its identity: its id, its attempts, its pool and blocklist entries hang on it. An
enrolment token is shared by every machine an admin sets up, so holding one proves only that the caller
may add *new* nodes; it must never let one machine take over another's name (the real node's credential
revoked, its work inherited). The node's own credential (the agent registering again with the token it
saved in its state folder, `agent/enrol.py`) only refreshes the node's facts and never comes here.

With an enrolment (or admin) token, for the name asked:

1. no node has it: a new node (`CREATE`);
2. a live node has it with another instance id: refused, whatever the token (two machines, a cloned
   image?, must not share one identity);
3. an admin removed that node (`DELETE /nodes/{name}`): it comes back (`RETURN`): the removal was the
   admin's approval;
4. an admin token with `replace: true`: the name goes to this agent (`REPLACE`), the old credential is
   revoked;
5. the same agent (same instance id) whose node never spoke with the credential it was given: its
   enrolment's answer was lost (a cut, a server killed between commit and answer) and it asks again
   (`REISSUE`): a new credential instead of the lost one;
6. anything else: refused with 409, saying how the name can be had.

`replace` with any other token than an admin's is refused (403) before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Claim(StrEnum):
    CREATE = "create"
    RETURN = "return"
    REPLACE = "replace"
    REISSUE = "reissue"


@dataclass(frozen=True)
class KnownNode:
    """What the server knows of the node that has the name."""

    name: str
    removed: bool          # an admin removed it (`nodes.removed_at`)
    live: bool             # up and heard from within the node timeout
    same_instance: bool    # the registering agent sends the instance id the node registered with
    credential_used: bool  # the node spoke with its credential since it was issued (a heartbeat, a refresh)


@dataclass(frozen=True)
class Verdict:
    """A claim allowed, or the status (403, 409) and the reason it is refused."""

    claim: Claim | None
    status: int = 0
    reason: str = ""


def claim_name(caller_kind: str, name: str, known: KnownNode | None, *, replace: bool) -> Verdict:
    """Whether a caller holding an enrolment or admin token may register under `name` (see the module)."""
    if replace and caller_kind != "admin":
        return Verdict(None, 403, f"only an admin token may replace a node (`replace: true`); a {caller_kind} "
                                  "token registers new names only")
    if known is None:
        return Verdict(Claim.CREATE)
    if known.live and not known.same_instance:
        return Verdict(None, 409, f"node name {name!r} is in use by another live agent (a cloned machine?); "
                                  "give this agent another --name")
    if known.removed:
        return Verdict(Claim.RETURN)
    if replace:
        return Verdict(Claim.REPLACE)
    if known.same_instance and not known.credential_used:
        return Verdict(Claim.REISSUE)
    return Verdict(None, 409, taken_reason(name))


def taken_reason(name: str) -> str:
    """Why an enrolment token cannot have a known node's name, and the three ways it can be had."""
    return (f"node name {name!r} belongs to a known node: an enrolment token cannot take it over. Its own agent "
            "registers with the node credential saved in its state folder; to give the name to this agent, an "
            f"admin removes the node first (`thresher node remove {name}`, DELETE /api/v1/nodes/{name}) or "
            "registers with an admin token and \"replace\": true; or give this agent another --name")
