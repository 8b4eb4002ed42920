"""**The** rules for text the farm stores and shows: what a name may contain, and what any text may.

A name (a job, layer, project, sequence, shot, node, tag, pool, limit, service, folder, owner, a node's
applications and GPUs) is shown in lists and picked from them, so it must show what it is: no control
characters, and none of the invisible format characters that change how a line reads (a bidirectional
override U+202E makes `gpj.exe` read `exe.jpg`; zero-width spaces make two names look alike). Any text at
all must be valid Unicode a database can hold: no NUL, no lone surrogate (`"\\ud800"` is valid JSON but no
string of characters: it cannot be encoded, so every listing that shows it would fail).

Pure: the wire models (`wire/`) and the spec (`model/spec.py`) apply these through pydantic, so a bad value
is refused with a 422 naming its field (rule 4). `server/log_text.py` keeps what a log may hold instead.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, model_validator

from thresher.model.problems import Location, located_error

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Categories no name may hold: format characters (bidirectional controls, zero-width characters, the BOM,
# soft hyphens), surrogates, private use and the line and paragraph separators.
_REFUSED_CATEGORIES = {"Cf", "Cs", "Co", "Zl", "Zp"}

CONTROL_MESSAGE = "must not contain control characters (NUL, tabs, line breaks)"

USER_PATTERN = r"^[A-Za-z0-9_.@-]{1,100}$"
"""A user name, wherever one is given (a new user, a job's `owner`, whom a wrangler submits for): one word of
ASCII letters, digits, `_`, `.`, `@` and `-`, 1 to 100 characters."""


def _codepoint(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def text_problem(value: str) -> str | None:
    """Why `value` is no text a database can hold and a listing show, or None."""
    found = _SURROGATE.search(value)
    if found:
        return f"must be valid Unicode: a lone surrogate ({_codepoint(found.group())}) is not a character"
    if "\x00" in value:
        return "must not contain NUL characters"
    return None


def name_problem(value: str) -> str | None:
    """Why `value` may not be a name that lists show, or None: bad text, control or invisible format
    characters (bidirectional overrides and isolates, zero-width characters, separators)."""
    if _CONTROL.search(value):  # NUL included
        return CONTROL_MESSAGE
    problem = text_problem(value)
    if problem:
        return problem
    if value.isascii():
        return None
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return (f"must not contain invisible or direction-changing characters ({_codepoint(char)}): "
                    "a list would not show what the name is")
    return None


# Terminal codes a renderer colours or moves its cursor with: CSI (`ESC [ ... m`), OSC (`ESC ] ... BEL`), others.
_TERMINAL_CODE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")


def output_line(line: str, limit: int) -> str:
    """A line a task printed, as a failure's reason quotes it: what a terminal shows of it (after its last
    carriage return, without colour and cursor codes), tabs as spaces, any other control character (a NUL
    included) and lone surrogate as U+FFFD, cut to `limit` characters. A reason is one line a database
    must hold and a list show, whatever was printed."""
    shown = [part for part in line.split("\r") if part.strip()]  # what a terminal shows after a \r
    text = _TERMINAL_CODE.sub("", shown[-1] if shown else "").replace("\t", " ").strip()
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("\ufffd", text))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def storable(value: str) -> str:
    """`value` with what no database can hold (NUL, lone surrogates) as U+FFFD: for text a node reports
    that is kept whatever it holds (a finish report's reason: refusing it would throw the result away)."""
    return _SURROGATE.sub("\ufffd", value.replace("\x00", "\ufffd")) if text_problem(value) else value


def check_text(value: str) -> str:
    """Pydantic's after-validator for any text (ValueError with the reason)."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def check_name(value: str) -> str:
    """Pydantic's after-validator for a name shown in lists (ValueError with the reason)."""
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Text = Annotated[str, AfterValidator(check_text)]
"""Any text: valid Unicode without NUL."""

NameText = Annotated[str, AfterValidator(check_name)]
"""A name shown in lists: printable, visible, read the way it is written."""

StoredText = Annotated[str, AfterValidator(storable)]
"""Text a node reports and the farm keeps whatever it holds: what a database cannot hold becomes U+FFFD."""


def readable(value: Any) -> Any:
    """`value` (text, or lists and tables of it) with each lone surrogate shown as U+FFFD: what a listing
    answers for a value stored before the rules above refused such text."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {readable(k): readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v) for v in value]
    return value


def _shown(key: Any) -> str | int:
    """A key as a field's path can show it: a lone surrogate written as its escape (`\\ud800`)."""
    if isinstance(key, int):
        return key
    return str(key).encode("utf-8", errors="backslashreplace").decode("utf-8")


def unicode_problems(document: Any, at: Location = ()) -> list[tuple[Location, str, Any]]:
    """Every string of a parsed JSON document (keys included) that is no valid Unicode, at its place:
    (location, message, value). JSON may carry a lone surrogate (`"\\ud800"`) where pydantic takes any
    `str` unchecked, so a document is walked once before its model reads it."""
    if isinstance(document, str):
        found = _SURROGATE.search(document)
        return [(at, text_problem(document) or "", document)] if found else []
    if isinstance(document, dict):
        out: list[tuple[Location, str, Any]] = []
        for key, value in document.items():
            place = (*at, _shown(key))
            if isinstance(key, str) and _SURROGATE.search(key):
                out.append((place, "the key " + (text_problem(key) or ""), key))
            out += unicode_problems(value, place)
        return out
    if isinstance(document, (list, tuple)):
        return [p for k, value in enumerate(document) for p in unicode_problems(value, (*at, k))]
    return []


class UnicodeBody(BaseModel):
    """A request body whose every string is valid Unicode: a lone surrogate anywhere in it is refused with
    its field (422), before it could be stored and break every answer that shows it."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        problems = unicode_problems(data)
        if problems:
            raise located_error(cls.__name__, [(loc, message, "(not valid Unicode)") for loc, message, _ in problems])
        return data
