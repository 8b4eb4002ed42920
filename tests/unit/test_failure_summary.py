"""The failure summary (model/failure_summary.py): reasons that mean the same group together."""

from __future__ import annotations

import pytest

from thresher.model.failure_summary import (
    NO_REASON,
    FailedAttempt,
    blocked_line,
    failure_line,
    group_failures,
    last_line,
    normalize_reason,
    plural,
)


@pytest.mark.parametrize("raw,expected", [
    ("exit code 1", "exit code 1"),
    ("exit status 1", "exit code 1"),
    ("Exited with 1", "exit code 1"),
    ("exit code 2", "exit code 2"),
    ("out of memory: killed by the kernel's OOM killer (peak 3.1 GB); retrying with 8192 MB", "out of memory"),
    ("missing output: /r/shot_0012.exr", "missing output"),
    ("stale output: /r/a.png was not written by this attempt (modified ..., attempt started ...)", "stale output"),
    ("killed by signal SIGSEGV", "killed by signal SIGSEGV"),
    ("exit code 3 (last line: ERROR: cannot open /tex/a.exr)", "exit code 3"),
    ("killed by signal SIGSEGV (last line: Segmentation fault; core dumped)", "killed by signal SIGSEGV"),
    ("error line: Error: cannot read /r/tex_0012.tx at line 34", "error line: Error: cannot read /r/tex_N.tx at line N"),
    (None, NO_REASON),
    ("   ", NO_REASON),
])
def test_normalize_reason(raw: str | None, expected: str) -> None:
    assert normalize_reason(raw) == expected


def test_groups_count_attempts_tasks_and_nodes_biggest_first() -> None:
    failed = [FailedAttempt(4, "node-a", "exit code 1"), FailedAttempt(5, "node-a", "exit status 1"),
              FailedAttempt(6, "node-b", "exit code 1"), FailedAttempt(6, "node-a", "exit code 1"),
              FailedAttempt(9, "node-c", "out of memory: peak 2 GB")]
    groups = group_failures(failed)
    assert [(g.reason, g.attempts, g.tasks, g.nodes) for g in groups] == [
        ("exit code 1", 4, [4, 5, 6], ["node-a", "node-b"]),
        ("out of memory", 1, [9], ["node-c"]),
    ]
    assert groups[0].example == "exit code 1"


def test_failure_line_says_it_in_one_line() -> None:
    groups = group_failures([FailedAttempt(t, "node-a", "exit code 1") for t in (4, 5, 6)])
    assert failure_line(3, groups) == "3 tasks failed — 'exit code 1' x3 on node-a (tasks 4, 5, 6)"
    one = group_failures([FailedAttempt(4, "node-a", "exit code 1")])
    assert failure_line(1, one) == "1 task failed — 'exit code 1' x1 on node-a (task 4)"
    assert failure_line(0, []) == "no task failed: no failed attempts recorded"
    assert failure_line(2, []) == "2 tasks failed — no failed attempts recorded"


def test_with_no_task_failed_now_the_line_says_the_failures_were_retried() -> None:
    """A flaky frame that failed once and then succeeded, or a failed task skipped: the job did not fail,
    and its line said "0 tasks failed — ..." as if it had."""
    groups = group_failures([FailedAttempt(157, "vm-1", "exit code 1"), FailedAttempt(158, "vm-2", "exit code 1")])
    assert failure_line(0, groups) == ("no task failed in the end; 2 attempts failed before their tasks were retried "
                                       "or skipped: 'exit code 1' x2 on vm-1, vm-2 (tasks 157, 158)")
    one = group_failures([FailedAttempt(4, "vm-1", "exit code 1")])
    assert failure_line(0, one, job_state="running") == ("no task is failed now; 1 attempt failed before its task was "
                                                    "retried or skipped: 'exit code 1' x1 on vm-1 (task 4)")
    assert "failed —" not in failure_line(0, groups) and "0 tasks" not in failure_line(0, groups)


def test_failure_line_keeps_long_lists_short() -> None:
    failed = [FailedAttempt(t, f"n{t % 5}", f"reason {chr(97 + t % 5)}") for t in range(1, 61)]
    line = failure_line(60, group_failures(failed))
    assert line.endswith("; and 2 other reasons")
    assert "(tasks 5, 10, 15, 20, 25, 30, 35, 40 and 4 more)" in line and len(line) < 400


def test_plural() -> None:
    assert plural(1, "job") == "1 job" and plural(0, "job") == "0 jobs" and plural(2, "node") == "2 nodes"
    assert plural(2, "dependency", "dependencies") == "2 dependencies"


def test_a_groups_last_line_is_what_its_first_attempt_printed_last() -> None:
    """The agent quotes a failed exit's last output line; the group keeps the exit code as its reason
    (two texts of one exit code are one problem more often than two) and the summary quotes the line."""
    assert last_line("exit code 3 (last line: ERROR: a; b (c))") == "ERROR: a; b (c)"
    assert last_line("exit code 3 (last line: Error); lost 2 times") == "Error"
    assert last_line("exit code 1") is None and last_line(None) is None
    groups = group_failures([FailedAttempt(4, "node-a", "exit code 3 (last line: ERROR: cannot open /tex/a.exr)"),
                             FailedAttempt(5, "node-b", "exit code 3 (last line: ERROR: cannot open /tex/b.exr)")])
    assert [g.reason for g in groups] == ["exit code 3"]
    assert failure_line(2, groups) == ("2 tasks failed — 'exit code 3' x2 on node-a, node-b (tasks 4, 5), "
                                       'last line: "ERROR: cannot open /tex/a.exr"')
    long = group_failures([FailedAttempt(4, "n", "exit code 1 (last line: " + "x" * 300 + ")")])
    assert failure_line(1, long).endswith('x…"') and len(failure_line(1, long)) < 200


def test_a_blocked_job_says_what_blocks_it_and_those_jobs_failures() -> None:
    """A blocked job with no failure of its own read "no task failed: no failed attempts recorded"."""
    upstream = [(4, "failed", "1 task failed — 'exit code 1' x1 on n1 (task 7)")]
    assert blocked_line("job 4 failed", None, upstream) == \
        "job 4 failed; job 4 failed: 1 task failed — 'exit code 1' x1 on n1 (task 7)"
    assert blocked_line("job 4 is blocked", "1 task failed — 'timed out' x1 on n2 (task 9)", []) == \
        "job 4 is blocked; its own failures: 1 task failed — 'timed out' x1 on n2 (task 9)"
    assert "no task failed" not in blocked_line(None, None, [])
