"""Services as records: what admins add, change and remove (`api/services.py` is the HTTP face), and the
services a submit reads to apply (`model/services.py` holds the merge). Every function runs in the
caller's transaction.

A service's pools and licence limits must exist when it is saved (as a layer's must at submit), so a
layer taking its defaults is never refused for what the admin typed. Removing a service is always
allowed: its defaults were copied into the layers that took them at submit, so unfinished jobs are
unaffected (and a later submit naming it is refused at `layers.N.service`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from thresher.model.problems import Problem
from thresher.model.services import ServiceDefaults, merge_defaults
from thresher.server import studio
from thresher.server.clock import utcnow
from thresher.server.db.queries import services as q
from thresher.server.errors import BadInput, Conflict, NotFound
from thresher.wire.services import Service, ServiceCreate, ServicePatch


def _view(row: Any) -> Service:
    return Service(name=row.name, defaults=ServiceDefaults.model_validate(row.defaults or {}),
                   created_at=row.created_at)


def known_services(conn: Connection) -> dict[str, ServiceDefaults]:
    """Every service's defaults by name: what a submit applies (tens of rows, read once per submit)."""
    return {row.name: ServiceDefaults.model_validate(row.defaults or {}) for row in conn.execute(q.ALL_SERVICES)}


def list_services(conn: Connection) -> list[Service]:
    return [_view(row) for row in conn.execute(q.ALL_SERVICES)]


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(q.SERVICE_BY_NAME, {"name": name}).first()
    if row is None:
        raise NotFound(f"no service named {name!r}")
    return row


def get_service(conn: Connection, name: str) -> Service:
    return _view(_row(conn, name))


def farm_problems(conn: Connection, defaults: ServiceDefaults) -> list[Problem]:
    """Pools and licence limits the defaults name that do not exist, each at its field."""
    problems: list[Problem] = []
    if defaults.pools:
        pools = set(studio.pool_names(conn))
        problems += [{"field": "defaults.pools", "message": f"no pool named {pool!r} (known: "
                      f"{', '.join(sorted(pools)) or 'none'})"} for pool in defaults.pools if pool not in pools]
    if defaults.limits:
        limits = studio.limit_names(conn)
        problems += [{"field": f"defaults.limits.{name}", "message": (
            f"no licence limit named {name!r} (known: {', '.join(sorted(limits)) or 'none'}; "
            f"an admin adds one: thresher limit add {name} --max N)")} for name in defaults.limits if name not in limits]
    return problems


def _checked(conn: Connection, defaults: ServiceDefaults) -> dict[str, Any]:
    problems = farm_problems(conn, defaults)
    if problems:
        raise BadInput("invalid service defaults", problems)
    return defaults.stored()


def create_service(conn: Connection, body: ServiceCreate) -> None:
    taken = f"a service named {body.name!r} exists already"
    if conn.execute(q.SERVICE_BY_NAME, {"name": body.name}).first() is not None:
        raise Conflict(taken, [{"field": "name", "message": "taken"}])
    stored = _checked(conn, body.defaults)
    try:
        conn.execute(q.INSERT_SERVICE, {"name": body.name, "defaults": stored, "created_at": utcnow()})
    except IntegrityError:  # taken by a request committed meanwhile (two server processes): rolled back
        raise Conflict(taken, [{"field": "name", "message": "taken"}]) from None


def update_service(conn: Connection, name: str, body: ServicePatch) -> None:
    """The fields given replace the service's (resources figure by figure); those in `clear` go."""
    row = _row(conn, name)
    merged = merge_defaults(ServiceDefaults.model_validate(row.defaults or {}), body.defaults, frozenset(body.clear))
    conn.execute(q.UPDATE_SERVICE, {"b_name": name, "b_defaults": _checked(conn, merged)})


def delete_service(conn: Connection, name: str) -> None:
    _row(conn, name)
    conn.execute(q.DELETE_SERVICE, {"name": name})
