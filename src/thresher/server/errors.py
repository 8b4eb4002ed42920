"""Errors the server turns into clear 4xx answers: `{"detail": ..., "errors": [{"field", "message"}]}`."""

from __future__ import annotations

# pydantic errors as {"field", "message"} entries; defined with the other pure checks of what people submit
from thresher.model.problems import field_errors as field_errors


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


class TooManyRequests(ApiProblem):
    status = 429


# SQLSTATEs that mean "this value does not fit the column": the request carried it, the database refused it.
_BAD_VALUE_STATES = {
    "22001": "a text value is too long",                        # string_data_right_truncation
    "22003": "a number is out of range",                        # numeric_value_out_of_range
    "22021": "a text value holds a character it cannot store",  # character_not_in_repertoire
    "22P05": "a text value holds a character it cannot store",  # untranslatable_character
}


def database_value_problem(exc: BaseException) -> BadInput | None:
    """A database error that can only come from a value in the request, as a 422; else None.

    The routes check what they take before it reaches the database; this is the last line, for a value
    that got past them (so the caller hears what was wrong instead of "internal error"). Nothing was
    written: the transaction that met the error was rolled back."""
    from sqlalchemy.exc import DataError, StatementError

    if isinstance(exc, DataError):
        orig = getattr(exc, "orig", None)
        text = str(orig or "")
        state = getattr(orig, "sqlstate", None)
        if state in _BAD_VALUE_STATES:
            return BadInput(f"invalid value: {_BAD_VALUE_STATES[state]}",
                            [{"field": "(request)", "message": text.splitlines()[0] if text else _BAD_VALUE_STATES[state]}])
        if "NUL (0x00)" in text:  # psycopg refuses to send it
            return BadInput("invalid value: text must not contain NUL characters",
                            [{"field": "(request)", "message": "text must not contain NUL (\\x00) characters"}])
        return None
    if isinstance(exc, StatementError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OverflowError) and "SQLite INTEGER" in str(exc):
        return BadInput("invalid value: a number is out of range",
                        [{"field": "(request)", "message": "a number is larger than the database can hold (64 bits)"}])
    return None
