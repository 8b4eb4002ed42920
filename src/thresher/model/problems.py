"""Problems with what a person submitted, each at its place: `{"field": "layers.0.frames", "message": ...}`.

This is the shape every 4xx answer lists (`errors` in `{"detail", "errors"}`). Checks that span several
fields (a layer name used twice, a dependency cycle) raise pydantic errors with the real location of the
field (`located_error`), so that a `ValidationError` always says where, and `field_errors` only reads
the locations, never the message text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Sequence

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

#: One thing wrong with a request: `{"field": dotted path (`(body)` for the whole document), "message": ...}`,
#: as `thresher.server.errors.ApiProblem` carries them.
Problem = dict[str, str]


#: A place in a document, as pydantic writes it: `("layers", 1, "name")`.
Location = tuple[str | int, ...]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'blender'?)` for a word close to one of `choices` (a typo), else ``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def field_path(loc: Sequence[str | int]) -> str:
    """`("layers", 1, "name")` -> `layers.1.name`; the empty location is the whole document."""
    return ".".join(str(part) for part in loc) or "(body)"


def problem(loc: Sequence[str | int], message: str) -> Problem:
    return {"field": field_path(loc), "message": message}


def located_error(title: str, errors: Sequence[tuple[Location, str, Any]]) -> ValidationError:
    """A `ValidationError` for errors found across fields: each (location, message, offending value).

    Raised inside a model validator, pydantic puts each location under the validated model's own, so a
    check on a job names `layers.1.name` and the same check on a job inside a larger document names the
    field under that document."""
    return ValidationError.from_exception_data(title, [
        InitErrorDetails(type=PydanticCustomError("job_spec", message), loc=loc, input=value)
        for loc, message, value in errors])


#: The tags of the spec's tagged unions (a dependency's short and long forms): not fields, left out of them.
UNION_TAGS = frozenset({"short form", "long form"})


def field_errors(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """pydantic errors as `{"field": "layers.0.frames", "message": "..."}` entries (under `prefix`)."""
    out: list[Problem] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part != "body" and part not in UNION_TAGS]
        message = error.get("msg", "invalid").removeprefix("Value error, ")
        field = ".".join(filter(None, [prefix, ".".join(loc)]))
        out.append({"field": field or "(body)", "message": message})
    return out


def merge_problems(first: list[Problem], more: list[Problem]) -> list[Problem]:
    """`first` plus the problems of `more` not said already; the job's own fields first, then layer by layer."""
    seen = {(p["field"], p["message"]) for p in first}
    out = list(first)
    for item in more:
        key = (item["field"], item["message"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return sorted(out, key=_layer_order)


def _layer_order(item: Problem) -> int:
    parts = item["field"].split(".")
    return int(parts[1]) if len(parts) > 1 and parts[0] == "layers" and parts[1].isdigit() else -1
