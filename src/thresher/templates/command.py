"""The generic `command` template: any program, with frame placeholders in its arguments."""

from __future__ import annotations

import re
import shlex

from pydantic import BaseModel, ConfigDict, Field, field_validator

from thresher.model.frames import Chunk
from thresher.templates.base import CommandLine, Template
from thresher.templates.outputs import expand_outputs
from thresher.templates.placeholders import fill_placeholders, unknown_placeholder


class CommandArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: list[str] | str = Field(..., description="argument list (or one string, split like a shell would)")
    shell: bool = Field(False, description="run through /bin/sh -c (only when you need pipes or globbing)")
    outputs: list[str] = Field(default_factory=list, description="files each chunk must write (#### padding)")
    progress_pattern: str | None = Field(None, description="regex with a group named pct, matched on output lines")
    error_patterns: list[str] = Field(default_factory=list, description="regexes that mark a failure even on exit 0")

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("command is empty")
            try:
                shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split command: {exc}") from None
        elif not value or not value[0].strip():
            raise ValueError("command is empty: give the program and its arguments")
        return value

    @field_validator("progress_pattern")
    @classmethod
    def _progress(cls, value: str | None) -> str | None:
        if value is not None:
            compiled = _compile(value)
            if "pct" not in compiled.groupindex:
                raise ValueError("progress_pattern needs a named group (?P<pct>...)")
        return value

    @field_validator("error_patterns")
    @classmethod
    def _errors(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _compile(pattern)
        return value


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


class CommandTemplate(Template):
    name = "command"
    description = "Any command line; {frame} {start} {end} {step} {frames} are filled in per task."
    Args = CommandArgs

    def command(self, args: CommandArgs, chunk: Chunk) -> CommandLine:
        if args.shell:
            text = args.command if isinstance(args.command, str) else shlex.join(args.command)
            argv = [fill_placeholders(text, chunk)]
        else:
            parts = shlex.split(args.command) if isinstance(args.command, str) else args.command
            argv = [fill_placeholders(part, chunk) for part in parts]
        return CommandLine(
            argv=argv,
            shell=args.shell,
            outputs=expand_outputs(args.outputs, chunk),
            progress_patterns=[args.progress_pattern] if args.progress_pattern else [],
            error_patterns=list(args.error_patterns),
        )

    def output_patterns(self, args: CommandArgs) -> list[str]:
        return list(args.outputs)

    def warnings(self, args: CommandArgs) -> list[tuple[str, str]]:
        text = args.command if isinstance(args.command, str) else " ".join(args.command)
        found = []
        if not re.search(r"\{(frame|start|end|frames)", text):
            found.append(("", "command has no {frame}/{start}/{end}/{frames} placeholder: every task runs the "
                          "same command"))
        syntax = shell_syntax(args.command) if isinstance(args.command, str) and not args.shell else []
        if syntax:  # split into words and run as they are (rule 3): `|` would be an argument of the program
            found.append(("args.command", f"`command` holds shell syntax ({', '.join(syntax)}) but runs without "
                          "a shell: set shell: true, or give the program and its arguments as a list"))
        unknown = unknown_placeholder(text)
        if unknown:
            found.append(("args.command", unknown))
        return found


def shell_syntax(command: str) -> list[str]:
    """What a shell would read in `command` and a plain split passes on as words: unquoted operators
    (`|`, `>`, `&&`, `;`...), command substitution and variables (`$(...)`, backquotes, `$HOME`)."""
    lexer = shlex.shlex(command, posix=False, punctuation_chars=True)
    lexer.whitespace_split = True
    found: list[str] = []
    try:
        words = list(lexer)
    except ValueError:
        return found
    for word in words:
        if set(word) <= set("|&;<>()"):
            mark = word
        elif not word.startswith("'") and (match := _EXPANSION.search(word)):
            mark = match.group(0)
        else:
            continue
        if mark not in found:
            found.append(mark)
    return found


_EXPANSION = re.compile(r"\$\(|`|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
