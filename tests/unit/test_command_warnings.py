"""What the `command` template warns of at submit (and in a dry run): a string command with shell syntax
that runs without a shell, and a placeholder no task fills in. Each at `layers.N.args.command`."""

from __future__ import annotations

from typing import Any

import pytest

from thresher.model.dry_run import dry_run
from thresher.server.submit import check_spec


def _warnings(command: Any, **args: Any) -> list[str]:
    return check_spec({"name": "j", "layers": [{"name": "r", "frames": "1-2",
                                                "args": {"command": command, **args}}]}).warnings


def test_a_string_command_with_shell_syntax_but_no_shell_warns_at_its_field() -> None:
    spec = {"name": "j", "layers": [{"name": "r", "frames": "1-2",
                                     "args": {"command": "echo {frame} | tr 1 2 > /tmp/out.txt"}}]}
    job = check_spec(spec)
    assert dry_run(job)["tasks"][0]["argv"] == ["echo", "1", "|", "tr", "1", "2", ">", "/tmp/out.txt"]  # as it runs
    assert job.warnings == ["layers.0.args.command: `command` holds shell syntax (|, >) but runs without a shell: "
                            "set shell: true, or give the program and its arguments as a list"]
    assert dry_run(job)["warnings"] == job.warnings  # what a dry run lists is what a submit answers
    assert "shell syntax ($HOME)" in _warnings("render {frame} --out $HOME/a.exr")[0]
    assert "shell syntax ($()" in _warnings('render {frame} --date "$(date)"')[0]
    assert "shell syntax (&&, ;)" in _warnings("cd /x && render {frame}; true")[0]


@pytest.mark.parametrize("command, args", [
    ("echo {frame} | tr 1 2", {"shell": True}),        # a shell reads it
    (["sh", "-c", "echo {frame} | tr 1 2"], {}),        # a list says what each word is
    ("echo '{frame} | >' {frame}", {}),                 # quoted: one argument, as meant
    ('render -c "print(1)" {frame}', {}),
])
def test_shell_syntax_a_shell_reads_or_quoted_is_not_warned(command: Any, args: dict[str, Any]) -> None:
    assert _warnings(command, **args) == []


def test_a_misspelt_placeholder_warns_with_the_known_ones() -> None:
    found = _warnings(["render", "--frame", "{fram}", "--end", "{end}"])
    assert found == ["layers.0.args.command: unknown placeholder {fram} (did you mean {frame}?); known: {frame}, "
                     "{start}, {end}, {step}, {frames}, {count}, {wedge}, {wedge_index}, {tile}, {tile_x}, "
                     "{tile_y} (it is passed on as written)"]
    assert "unknown placeholder {strat:04d}" not in _warnings("render {strat:04d} {end}")[0]  # named without spec
    assert "unknown placeholder {strat}" in _warnings("render {strat:04d} {end}")[0]
    alone = _warnings("render {fram}")  # close to one: meant as one, and no frame placeholder either
    assert len(alone) == 2 and "every task runs the same command" in alone[0] and "{fram}" in alone[1]


@pytest.mark.parametrize("command", [
    ["render", "{frame:04d}", "{start}", "{wedge}"],
    ["render", "{frame}", "--json", '{"a": 1, "b": {"c": 2}}'],      # JSON
    ["sh", "-c", "render ${SHOT}_{frame} {{kept}}"],                # shell variables, doubled braces
    ["awk", "{print}", "/tmp/list"],                                # no placeholder meant at all
])
def test_braces_that_are_not_placeholders_are_not_warned(command: list[str]) -> None:
    assert not [w for w in _warnings(command) if "unknown placeholder" in w]

