"""A log's bytes as the database holds them: every byte kept, whatever the task printed.

A task prints bytes, not text: a NUL, a stray byte of another encoding, half a character. `log_chunks.data`
is a text column, and PostgreSQL's text holds neither NUL nor invalid UTF-8; refusing the piece would lose
the rest of the log. So a piece that is not plain text is stored escaped, and read back exactly:

- plain UTF-8 without NUL (nearly every piece) is stored as it is;
- anything else is stored as `ESCAPED` followed by the text with `\\` written `\\\\`, NUL `\\0` and each
  byte that is not UTF-8 `\\xHH`; a plain piece that happens to start with `ESCAPED` is escaped too, so the
  two never mix up.

The reader (`views.read_log`) turns the stored pieces back into the log's bytes, so byte offsets stay
exact, and only then decodes them for people: undecodable bytes show as replacement characters (U+FFFD),
a NUL stays a NUL (JSON carries it as `\\u0000`).

Our agent decodes a task's output into its log file (`agent/output.py`: stray bytes become U+FFFD there), so
what it sends is valid text. JSON may still carry a lone surrogate (another client, a bug): U+DC80-U+DCFF
is read as the byte 0x80-0xFF it escapes (Python's `surrogateescape`), any other as a replacement
character (`wire_bytes`); either way the log goes on and the reader shows U+FFFD.
"""

from __future__ import annotations

import re

ESCAPED = "\ue000"  # a private-use character: no text a plain piece starts with
_ESCAPE = re.compile(r"[\\\x00\udc80-\udcff]")
_UNESCAPE = re.compile(r"\\(\\|0|x[89a-f][0-9a-f])")
_OTHER_SURROGATE = re.compile(r"[\ud800-\udc7f\udd00-\udfff]")


def wire_bytes(text: str) -> bytes:
    """The log bytes an agent's chunk of JSON text stands for (see the module's docstring)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _OTHER_SURROGATE.sub("\ufffd", text).encode("utf-8", errors="surrogateescape")


def _escape_one(found: re.Match[str]) -> str:
    char = found.group()
    if char == "\\":
        return "\\\\"
    if char == "\x00":
        return "\\0"
    return f"\\x{ord(char) - 0xDC00:02x}"


def to_stored(raw: bytes) -> str:
    """The text column's value for the log bytes `raw`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if "\x00" not in text and not text.startswith(ESCAPED):
            return text
    return ESCAPED + _ESCAPE.sub(_escape_one, raw.decode("utf-8", errors="surrogateescape"))


def _unescape_one(found: re.Match[str]) -> str:
    code = found.group(1)
    if code == "\\":
        return "\\"
    if code == "0":
        return "\x00"
    return chr(0xDC00 + int(code[1:], 16))


def from_stored(data: str) -> bytes:
    """The log bytes a stored value holds (`to_stored` undone)."""
    if not data.startswith(ESCAPED):
        return data.encode("utf-8", errors="surrogateescape")
    return _UNESCAPE.sub(_unescape_one, data[len(ESCAPED):]).encode("utf-8", errors="surrogateescape")
