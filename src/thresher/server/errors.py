"""Errors the server turns into clear 4xx answers: `{"detail": ..., "errors": [{"field", "message"}]}`."""

from __future__ import annotations

from pydantic import ValidationError


class ApiProblem(Exception):
    status = 400

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class BadInput(ApiProblem):
    status = 422


class NotFound(ApiProblem):
    status = 404


class Conflict(ApiProblem):
    status = 409


class Forbidden(ApiProblem):
    status = 403


class Unauthorized(ApiProblem):
    status = 401


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """pydantic errors as `{"field": "layers.0.frames", "message": "..."}` entries."""
    out = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        message = error.get("msg", "invalid")
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        # model-level validators name their field in the message: "layers.1.name: ..."
        if not loc and ": " in message and " " not in message.split(": ", 1)[0]:
            field, message = message.split(": ", 1)
            loc = [field]
        field = ".".join(filter(None, [prefix, ".".join(loc)]))
        out.append({"field": field or "(body)", "message": message})
    return out
