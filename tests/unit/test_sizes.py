"""What a job may hand its tasks (`model/sizes.py`), without a server: each limit, and its message."""

from __future__ import annotations

from thresher.model.sizes import (
    MAX_ARG_BYTES,
    MAX_ARGS,
    MAX_COMMAND_BYTES,
    MAX_ENV_BYTES,
    MAX_ENV_VAR_BYTES,
    MAX_ENV_VARS,
    argv_problem,
    env_problem,
)


def test_command_lines() -> None:
    assert argv_problem(["render", "-f", "1"]) is None
    assert argv_problem(["x"] * MAX_ARGS) is None
    assert argv_problem(["x"] * (MAX_ARGS + 1)) == f"the command has {MAX_ARGS + 1:,} arguments; the limit is {MAX_ARGS:,}"
    assert argv_problem(["a", "é" * (MAX_ARG_BYTES // 2)]) is None  # bytes, not characters: 2 each
    problem = argv_problem(["a", "é" * (MAX_ARG_BYTES // 2 + 1)])
    assert problem is not None and problem.startswith("argument 1 is")
    assert argv_problem(["x" * 100_000] * (MAX_COMMAND_BYTES // 100_001)) is None
    problem = argv_problem(["x" * 100_000] * (MAX_COMMAND_BYTES // 100_001 + 1))
    assert problem is not None and problem.startswith("the command line is")


def test_environments() -> None:
    assert env_problem({}) is None and env_problem({"A": "1"}) is None
    assert env_problem({f"V{i}": "" for i in range(MAX_ENV_VARS + 1)}) is not None
    assert env_problem({"V": "x" * (MAX_ENV_VAR_BYTES - 2)}) is None  # "V=" and the value
    assert "environment variable V is" in (env_problem({"V": "x" * (MAX_ENV_VAR_BYTES - 1)}) or "")
    many = {f"V{i:03d}": "x" * 1000 for i in range(MAX_ENV_BYTES // 1000)}
    assert "together" in (env_problem(many) or "")
