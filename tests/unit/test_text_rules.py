"""The text rules without HTTP: what a name may contain (`model/text.py`), how the spec and the agent's
registration apply them, and a log's bytes stored and read back exactly (`server/log_text.py`,
`server/log_cap.rows`)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from thresher.model.problems import field_errors
from thresher.model.spec import JobSpec
from thresher.model.text import name_problem, output_line, storable, text_problem, unicode_problems
from thresher.server import log_cap, log_text
from thresher.wire.agent import Registration
from thresher.wire.nodes import NodeChange
from thresher.wire.studio import ProjectCreate


@pytest.mark.parametrize("name", ["shot010", "Shot 010 v2", "été", "渲染", "Zürich_plate", "🎬 trailer", "a-b.c"])
def test_a_name_that_shows_what_it_is_is_accepted(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name,fragment", [
    ("invoice\u202egpj.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("shot\u2066010\u2069", "U+2066"),
    ("shot\u200b010", "U+200B ZERO WIDTH SPACE"),
    ("\ufeffshot", "U+FEFF"),
    ("shot\u00ad010", "U+00AD"),
    ("shot\u2028010", "U+2028"),
    ("a\u200fb", "U+200F"),
    ("shot\ud800", "lone surrogate"),
    ("tab\there", "control characters"),
    ("line\n", "control characters"),
    ("nul\x00", "NUL"),
    ("c1\x85", "control characters"),
])
def test_a_name_that_hides_or_turns_its_text_is_refused(name: str, fragment: str) -> None:
    problem = name_problem(name)
    assert problem is not None and fragment in problem, problem


def test_any_text_may_carry_what_a_name_may_not_but_must_be_valid_unicode() -> None:
    assert text_problem("line one\nline two \u202e") is None
    assert "surrogate" in (text_problem("\udcff") or "")
    assert "NUL" in (text_problem("a\x00b") or "")


@pytest.mark.parametrize("printed,quoted", [
    ("\x1b[1;31mERROR:\x1b[0m cannot open\t/tex/a.exr\n", "ERROR: cannot open /tex/a.exr"),
    ("Progress 10%\rProgress 20%\r", "Progress 20%"),  # what a terminal shows of a redrawn line
    ("\x1b]0;blender\x07Fra:12 failed", "Fra:12 failed"),  # a window title set on the way
    ("bad \x00 byte \ud800 here", "bad \ufffd byte \ufffd here"),  # what no database or list holds
    ("  \r\n", ""),
])
def test_an_output_line_is_quoted_as_one_clean_line(printed: str, quoted: str) -> None:
    assert output_line(printed, 200) == quoted
    assert text_problem(quoted) is None and name_problem(quoted or "x") is None


def test_an_output_line_is_cut_to_its_limit_and_storable_text_keeps_what_it_can() -> None:
    assert output_line("x" * 50, 10) == "x" * 9 + "…"
    assert storable("exit 1: a\x00b\udcff") == "exit 1: a\ufffdb\ufffd" and storable("fine") == "fine"


def test_unicode_problems_name_every_place_keys_included() -> None:
    document = {"tags": ["ok", "bad\ud800"], "apps": {"blender\udfff": "/bin/blender"}, "gpus": [{"name": "\ud83d"}]}
    found = {loc: message for loc, message, _ in unicode_problems(document)}
    assert set(found) == {("tags", 1), ("apps", "blender\\udfff"), ("gpus", 0, "name")}  # a path JSON can carry
    assert all("surrogate" in message for message in found.values())
    assert unicode_problems({"name": "fine \U0001F600", "n": 3, "x": None}) == []


def _fields(model: type[BaseModel], body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return {e["field"]: e["message"] for e in field_errors(info.value)}


def _spec(**job: object) -> dict[str, Any]:
    return {"name": "shot010", "layers": [{"name": "render", "frames": "1", "args": {"command": ["true"]}}], **job}


@pytest.mark.parametrize("job,field", [
    ({"name": "shot\u202e010"}, "name"),
    ({"project": "demo\u2067"}, "project"),
    ({"sequence": "sq\u200b10"}, "sequence"),
    ({"shot": "sh\u202d10"}, "shot"),
    ({"owner": "me\u202e"}, "owner"),
    ({"folder": "light\u202eing"}, "folder"),
])
def test_the_spec_refuses_spoofing_names_at_their_field(job: dict, field: str) -> None:
    assert field in _fields(JobSpec, _spec(**job))


def test_the_spec_refuses_a_lone_surrogate_anywhere_naming_the_field() -> None:
    spec = _spec()
    spec["layers"][0]["args"] = {"command": ["echo", "\ud800"]}
    spec["env"] = {"A": "\udfff"}
    fields = _fields(JobSpec, spec)
    assert "layers.0.args.command.1" in fields and "env.A" in fields
    assert "surrogate" in fields["env.A"]


def test_a_tag_with_a_trailing_line_break_is_refused() -> None:
    """`re.match` with `$` takes a trailing line break; the rule matches the whole name."""
    assert "tags" in _fields(NodeChange, {"tags": ["gpu\n"]})


def test_a_project_name_follows_the_same_rule() -> None:
    assert "name" in _fields(ProjectCreate, {"name": "show\u202e"})
    assert ProjectCreate.model_validate({"name": "Ciné 2"}).name == "Ciné 2"


@pytest.mark.parametrize("change,field", [
    ({"tags": ["gpu", "bad\ud800"]}, "tags"),
    ({"tags": ["gpu\u202e"]}, "tags"),
    ({"apps": {"blender\ud800": "/usr/bin/blender"}}, "apps.blender\\ud800"),
    ({"apps": {"blender": "/usr/bin/\ud800"}}, "apps.blender"),
    ({"gpus": [{"index": 0, "name": "RTX\ud800"}]}, "gpus.0.name"),
    ({"gpus": [{"index": 0, "name": "RTX \u202e0904"}]}, "gpus.0.name"),
    ({"hostname": "host\u202e"}, "hostname"),
    ({"os": "linux\x00"}, "os"),
])
def test_a_registration_is_checked_as_peoples_input_is(change: dict, field: str) -> None:
    fields = _fields(Registration, {"name": "n1", "cores": 2, "memory_mb": 1024, **change})
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


def test_a_plain_registration_still_passes() -> None:
    body = Registration.model_validate({"name": "n1", "cores": 2, "memory_mb": 1024, "tags": ["linux", "gpu"],
                                        "apps": {"blender": "C:\\Program Files\\Blender 4.2\\blender.exe"},
                                        "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090"}]})
    assert body.tags == ["gpu", "linux"]


# ------------------------------------------------------------------ a log's bytes, stored and read back

@pytest.mark.parametrize("raw", [
    b"plain text\n", "héllo wörld ✓\n".encode(), b"before\x00after\n", b"\x00", b"latin-1: caf\xe9\n",
    b"\xff\xfe\x80", b"back\\slash \\0 \\xff\n", "\ue000starts with the mark".encode(), b"",
    b"half a char \xe2\x9c", "\\x80 literally".encode(),
])
def test_stored_log_bytes_read_back_exactly(raw: bytes) -> None:
    stored = log_text.to_stored(raw)
    assert "\x00" not in stored and text_problem(stored) is None  # a text column of any database holds it
    assert log_text.from_stored(stored) == raw


def test_plain_text_is_stored_as_it_is() -> None:
    assert log_text.to_stored("frame 1 done ✓\n".encode()) == "frame 1 done ✓\n"


def test_random_bytes_survive_the_round_trip() -> None:
    rng = random.Random(13)
    alphabet = [b"\x00", b"\\", b"0", b"x", b"a", b"\n", b"\xff", b"\x80", "é".encode(), "\ue000".encode(), b"\xe2"]
    for _ in range(2000):
        raw = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert log_text.from_stored(log_text.to_stored(raw)) == raw, raw


def test_an_agents_text_stands_for_the_bytes_it_escaped() -> None:
    assert log_text.wire_bytes("plain ✓") == "plain ✓".encode()
    assert log_text.wire_bytes("caf\udce9") == b"caf\xe9"  # surrogateescape: one byte
    assert log_text.wire_bytes("x\ud800y") == "x\ufffdy".encode()  # any other lone surrogate: U+FFFD


def test_a_long_piece_is_stored_in_bounded_rows_split_between_characters() -> None:
    raw = "é".encode() * 1000 + b"tail"
    rows = log_cap.rows(10, raw, most=99)
    assert b"".join(part for _, part in rows) == raw
    assert all(len(part) <= 99 + 3 for _, part in rows)
    assert [at for at, _ in rows] == [10 + sum(len(p) for _, p in rows[:k]) for k in range(len(rows))]
    assert all(part.decode("utf-8") for _, part in rows)  # no row starts or ends inside a character
