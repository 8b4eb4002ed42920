"""**The** rule for who may make which call: (role, permission, is the caller the job's owner) to
allowed, or the reason it is not.

Every route declares one permission by name (`server/permits.py`: `permit("job.kill")`, which also
writes the name into the operation's OpenAPI as `x-permission`), and the permission matrix test reads
them back. A permission belongs to one class, and the class says which roles hold it:

- `public`: anyone, with no credential at all (health, password login);
- `any`: any credential (who am I): a person's, a node's, an enrollment token;
- `node`: a node's own credential only (the agent's calls); `enroll`: an enrollment token, or a node's
  own credential registering again;
- `read`: every person, read-only tokens included (viewers read everything);
- `personal`: every person with a full token: their own tokens (a read-only token cannot mint a full
  one); `logout` also a read-only token (revoking itself);
- `submit`: artists, wranglers, admins;
- `own`: wranglers and admins on every job, artists on their own jobs only;
- `steer`: wranglers and admins (every job and node: urgent, blocklists, drain, folder moves);
- `admin`: admins only (users, projects, pools, limits, services, settings).

A read-only token acts as a viewer whatever its user's role. Pure: no I/O, no HTTP; the caller says
whether it owns the job (`None`: the call is not about one job, or the job does not exist - the route
answers 404 for that).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    WRANGLER = "wrangler"
    ARTIST = "artist"
    VIEWER = "viewer"


# Credentials that are not people: they never hold a person's permission.
NODE = "node"
ENROLL = "enroll"
ANONYMOUS = "anonymous"

CLASSES = ("public", "any", "node", "enroll", "read", "personal", "logout", "submit", "own", "steer", "admin")


@dataclass(frozen=True)
class Permission:
    name: str
    cls: str
    doing: str  # what it does, for a refusal: "kill" ("artist alice may not kill job 12 of bob")


def _p(name: str, cls: str, doing: str) -> Permission:
    assert cls in CLASSES, cls
    return Permission(name, cls, doing)


PERMISSIONS: dict[str, Permission] = {p.name: p for p in (
    _p("public", "public", "call"),
    _p("self", "any", "ask who it is"),
    _p("node.agent", "node", "make agent calls"),
    _p("node.register", "enroll", "register nodes"),
    # reading
    _p("job.read", "read", "read jobs"),
    _p("node.read", "read", "read nodes"),
    _p("studio.read", "read", "read the studio's records"),
    _p("template.read", "read", "read templates"),
    _p("token.read", "read", "list tokens"),
    # a person's own
    _p("token.own", "personal", "make or revoke tokens"),
    _p("token.logout", "logout", "log out"),
    _p("session.end", "personal", "end sessions"),
    _p("password.own", "personal", "change their password"),
    # jobs
    _p("job.submit", "submit", "submit jobs"),
    _p("job.kill", "own", "kill"),
    _p("job.pause", "own", "pause"),
    _p("job.resume", "own", "resume"),
    _p("job.retry", "own", "retry"),
    _p("job.priority", "own", "change the priority of"),
    _p("job.release", "own", "release the held tasks of"),
    _p("job.scout", "own", "pick the scout frames of"),
    _p("job.layer", "own", "steer the layers of"),
    _p("job.dependencies", "own", "change the dependencies of"),
    _p("job.delete", "own", "delete"),
    _p("task.kill", "own", "kill a task of"),
    _p("task.retry", "own", "retry a task of"),
    _p("task.skip", "own", "skip a task of"),
    _p("job.urgent", "steer", "mark urgent"),
    _p("job.move", "steer", "move"),
    _p("job.blocklist", "steer", "clear the blocklist of"),
    _p("jobs.bulk", "steer", "archive or delete jobs by filter"),
    # nodes
    _p("node.steer", "steer", "enable, disable, drain or tag nodes"),
    _p("node.remove", "steer", "remove nodes"),
    _p("audit.read", "steer", "read the audit log"),
    # the studio and people: admins
    _p("admin", "admin", "make admin calls"),
    _p("project.manage", "admin", "change projects"),
    _p("pool.manage", "admin", "change pools"),
    _p("limit.manage", "admin", "change limits"),
    _p("service.manage", "admin", "change services"),
    _p("user.manage", "admin", "manage users"),
    _p("enroll.manage", "admin", "manage enrollment tokens"),
)}

_PERSON_CLASSES = {
    Role.ADMIN: {"read", "personal", "logout", "submit", "own", "steer", "admin"},
    Role.WRANGLER: {"read", "personal", "logout", "submit", "own", "steer"},
    Role.ARTIST: {"read", "personal", "logout", "submit", "own"},
    Role.VIEWER: {"read", "personal", "logout"},
}
_READ_ONLY_CLASSES = {"read", "logout"}


@dataclass(frozen=True)
class Refusal:
    """Why a call is refused (the 403's detail)."""

    reason: str


def decide(who: str, permission: str, is_owner: bool | None = None, *, read_only: bool = False) -> Refusal | None:
    """None when `who` (a role, `node`, `enroll` or `anonymous`) may use `permission`; else why not.

    `is_owner` matters only for `own` permissions held by an artist: True allows, False refuses,
    None (no job named, or none such) allows, so that the route can answer 404."""
    perm = PERMISSIONS.get(permission)
    if perm is None:
        return Refusal(f"unknown permission {permission!r}")
    if perm.cls == "public":
        return None
    if who == ANONYMOUS:
        return Refusal("no credential")
    if perm.cls == "any":
        return None
    if who in (NODE, ENROLL):
        if (perm.cls == "node" and who == NODE) or perm.cls == "enroll":
            return None
        return Refusal(f"{'an enrollment' if who == ENROLL else 'a node'} token may not {perm.doing}")
    if perm.cls == "enroll" and who == Role.ADMIN:
        return None  # an admin may enrol a node too, and approve one taking a known node's name (`replace`)
    if perm.cls in ("node", "enroll"):
        return Refusal(f"only an agent's {'node' if perm.cls == 'node' else 'enrollment'} credential may "
                       f"{perm.doing}")
    try:
        role = Role(who)
    except ValueError:
        return Refusal(f"unknown role {who!r}")
    if read_only and perm.cls not in _READ_ONLY_CLASSES:
        return Refusal(f"a read-only token may not {perm.doing}")
    if perm.cls not in _PERSON_CLASSES[role]:
        return Refusal(f"{'an' if role[0] in 'aeiou' else 'a'} {role} may not {perm.doing}")
    if perm.cls == "own" and role == Role.ARTIST and is_owner is False:
        return Refusal(f"an artist may {perm.doing} only their own jobs")
    return None


def owner_refusal(role: str, user: str, permission: str, job_id: int, owner: str) -> str:
    """The 403's detail when an artist acts on another's job: "artist alice may not kill job 12 of bob"."""
    return f"{role} {user} may not {PERMISSIONS[permission].doing} job {job_id} of {owner}"


def needs_owner(who: str, permission: str, *, read_only: bool = False) -> bool:
    """Whether the answer for `who` depends on owning the job (only then must the job be read)."""
    perm = PERMISSIONS.get(permission)
    return perm is not None and perm.cls == "own" and who == Role.ARTIST and not read_only


def priority_refusal(role: str, priority: int, ceiling: int) -> str | None:
    """An artist sets priorities up to the ceiling the admin chose (`artist_max_priority`)."""
    if role == Role.ARTIST and priority > ceiling:
        return f"an artist may set priorities up to {ceiling}, not {priority}"
    return None


def on_behalf_refusal(role: str, user: str, owner: str | None) -> str | None:
    """Only wranglers and admins submit for someone else (recorded as owner and submitted_by)."""
    if owner and owner != user and role not in (Role.ADMIN, Role.WRANGLER):
        return f"{role} {user} may not submit jobs on behalf of {owner}"
    return None


def member_refusal(role: str, user: str, project: str, members: set[str]) -> str | None:
    """A project that lists members takes jobs from them (and from wranglers and admins) only."""
    if members and user not in members and role not in (Role.ADMIN, Role.WRANGLER):
        return f"{role} {user} is not a member of project {project}"
    return None
