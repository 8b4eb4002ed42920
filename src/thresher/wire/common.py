"""Shapes every route shares: the problem answer of every error, and the page of every list."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field

T = TypeVar("T")


def _utc(value: datetime | None) -> datetime | None:
    """The server stores UTC; SQLite hands datetimes back without a zone."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


Moment = Annotated[datetime | None, AfterValidator(_utc)]
"""A moment in UTC; on the wire an ISO 8601 string ending in `Z`, or null."""


class FieldError(BaseModel):
    """One problem with one value of the request."""

    field: str = Field(..., description="dotted path of the value: a body field (`layers.0.frames`), a query "
                                        "or path parameter (`state`, `ident`), `(body)` for the body as a whole, "
                                        "`(request)` for a value the database refused")
    message: str


class Problem(BaseModel):
    """Every error answer (4xx and 5xx): one sentence for people, and each problem with its place."""

    detail: str = Field(..., description="one human sentence")
    errors: list[FieldError] = Field(..., description="every problem found, with its field; may be empty")


class Page(BaseModel, Generic[T]):
    """One page of a list: `limit` items from `offset`, and how many there are in all."""

    items: list[T]
    total: int = Field(..., ge=0, description="items matching the filters, on every page")


# What each error status means, in the OpenAPI document of every route that can answer it.
_STATUS_MEANING = {
    401: "No token, or an unknown, revoked or expired one (or dashboard session)",
    403: "The caller's role (or token kind) may not make this call, or not on this job (the reason is in "
         "`detail`); or a dashboard change without its CSRF token",
    404: "Unknown id or name",
    409: "Conflicts with the current state (the reason is in `detail`)",
    413: "The request body is larger than the server takes (the limit and its setting are in `detail`)",
    422: "Invalid request: every problem with its field",
    429: "Too many failed logins for this user name or from this address: locked for a while (when is in `detail`)",
    503: "A service the call needs does not answer (the LDAP server of a login; the reason is in `detail`)",
}


def error_responses(*statuses: int, **special: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that can answer these error statuses, each with the problem shape.
    `special` gives a status (named `s409`) a shape of its own that extends the problem."""
    out: dict[int | str, dict[str, Any]] = {
        status: {"model": Problem, "description": _STATUS_MEANING[status]} for status in statuses}
    for name, model in special.items():
        status = int(name.removeprefix("s"))
        out[status] = {"model": model, "description": _STATUS_MEANING[status]}
    return out
