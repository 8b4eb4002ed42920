"""How large what a job hands to its tasks may be: a command's arguments, the environment, the folder.

Every assignment carries its task's command line, environment and working folder to the agent, so a
spec that holds megabytes there costs that much in every assignment of every task, and an operating
system refuses to start a process past its own limits anyway (Linux: 128 KiB per argument or
environment string, about 2 MiB for all of them together; Windows: 32,767 characters of command line).
These limits refuse such a spec at submit, with the field and the limit, instead of a farm of tasks that
fail at start. The request body itself is limited by the server (`ServerSettings.max_body_bytes`,
`max_submit_body_bytes`). Pure: checked by `LayerSpec`/`JobSpec` and by `model/layer_check.py` on the
first command each layer builds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Arguments in one task's command line.
MAX_ARGS = 4096
#: Bytes (UTF-8) of one argument: Linux's MAX_ARG_STRLEN (128 KiB, its NUL included).
MAX_ARG_BYTES = 128 * 1024 - 1
#: Bytes of a whole command line (its arguments together, one NUL each): half of what Linux allows for
#: arguments and environment together, leaving the rest to the environment.
MAX_COMMAND_BYTES = 1024 * 1024
#: Variables a job or a layer may set.
MAX_ENV_VARS = 1000
#: Bytes of one variable (`NAME=value`, as the OS holds it).
MAX_ENV_VAR_BYTES = 128 * 1024 - 1
#: Bytes of the variables a job or layer sets, together.
MAX_ENV_BYTES = 256 * 1024
#: Characters of a working folder (Linux's PATH_MAX).
MAX_CWD_CHARS = 4096


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n >= 1024 else f"{n} bytes"


def argv_problem(argv: Sequence[str]) -> str | None:
    """What is too large in a built command line, or None."""
    if len(argv) > MAX_ARGS:
        return f"the command has {len(argv):,} arguments; the limit is {MAX_ARGS:,}"
    total = 0
    for n, arg in enumerate(argv):
        size = _size(arg)
        if size > MAX_ARG_BYTES:
            return f"argument {n} is {size:,} bytes; the limit is {MAX_ARG_BYTES:,} bytes per argument"
        total += size + 1
    if total > MAX_COMMAND_BYTES:
        return f"the command line is {_kib(total)}; the limit is {_kib(MAX_COMMAND_BYTES)}"
    return None


def env_problem(env: Mapping[str, str]) -> str | None:
    """What is too large in an environment a job or layer sets, or None."""
    if len(env) > MAX_ENV_VARS:
        return f"{len(env):,} environment variables; the limit is {MAX_ENV_VARS:,}"
    total = 0
    for key, value in env.items():
        size = _size(key) + 1 + _size(value)
        if size > MAX_ENV_VAR_BYTES:
            return f"environment variable {key} is {size:,} bytes; the limit is {MAX_ENV_VAR_BYTES:,} bytes each"
        total += size + 1
    if total > MAX_ENV_BYTES:
        return f"the environment variables are {_kib(total)} together; the limit is {_kib(MAX_ENV_BYTES)}"
    return None
