"""The real `thresher` CLI against a real server and real agents.

Each test drives the farm only through the command line, the way a wrangler or a pipeline script
does, and checks both what it prints and its exit code. The commands run in this test process
(Typer's runner: the same application, arguments, environment, exit code, stdout and stderr, over
real HTTP), which spares each call a fresh interpreter's start; `test_the_console_script_runs_as_a_process`
and the agent test start the real entry point as a process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from tests.support.farm import Farm
from typer.testing import CliRunner

from thresher.cli.main import app

pytestmark = pytest.mark.e2e

THRESHER = [sys.executable, "-m", "thresher.cli"]


class Cli:
    """Runs `thresher ...` with the farm's URL and admin token in the environment."""

    def __init__(self, farm: Any) -> None:
        self.farm = farm
        self.env = {**farm.env, "THRESHER_SERVER": farm.server_url, "THRESHER_TOKEN": farm.admin_token,
                    "COLUMNS": "200"}

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        with contextlib.chdir(self.farm.root):
            out = CliRunner().invoke(app, list(args), env=self.env, input=input)
        result = subprocess.CompletedProcess(["thresher", *args], out.exit_code, out.stdout, out.stderr)
        if out.exception is not None and not isinstance(out.exception, SystemExit):
            raise AssertionError(f"thresher {' '.join(args)} raised {out.exception!r}\nstderr: {out.stderr}")
        if check and result.returncode != 0:
            raise AssertionError(f"thresher {' '.join(args)} exited {result.returncode}\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def submit_cmd(self, *args: str) -> int:
        return int(self("submit-cmd", *args).stdout.strip())


def _farm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, db: str) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp(f"cli-{db}")
    postgres = request.getfixturevalue("postgres") if db == "postgresql" else None
    url = postgres.create_database() if postgres else f"sqlite:///{root / 'thresher.db'}"
    farm = Farm(url, root).start()
    try:
        farm.start_agent("n1", cores=2)
        yield farm
    finally:
        farm.stop()
        if postgres:
            postgres.drop_database(url)


@pytest.fixture(scope="module")
def sqlite_farm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """One SQLite farm (one agent, n1, two cores) for the whole module: the tests only add jobs (each
    filters by its own), and the one that drains n1 enables it again."""
    yield from _farm(request, tmp_path_factory, "sqlite")


@pytest.fixture(scope="module", params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="pg", marks=pytest.mark.postgres),
])
def shared_farm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """The module's farm of each database, for the tests whose exit codes rest on job states the
    database derives (wait, log -f)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_farm")
    else:
        yield from _farm(request, tmp_path_factory, request.param)


def _cli(request: pytest.FixtureRequest, farm: Farm) -> Cli:
    """`Cli` on a shared farm; its process logs go with a failing test's report."""
    for plugin in request.config.pluginmanager.get_plugins():  # tests/conftest.py's report hook
        key = getattr(plugin, "FARMS_KEY", None)
        if key is not None:
            request.node.stash[key] = [farm]
    return Cli(farm)


@pytest.fixture
def cli(request: pytest.FixtureRequest, sqlite_farm: Farm) -> Cli:
    return _cli(request, sqlite_farm)


@pytest.fixture
def db_cli(request: pytest.FixtureRequest, shared_farm: Farm) -> Cli:
    return _cli(request, shared_farm)


def test_submit_cmd_wait_and_log(db_cli: Cli) -> None:
    cli = db_cli
    job_id = cli.submit_cmd("--frames", "1-4", "--chunk", "2", "--", "echo", "frame", "{start}", "to", "{end}")
    result = cli("wait", str(job_id), "--timeout", "60")
    assert result.returncode == 0
    assert result.stdout.strip() == f"job {job_id} succeeded"

    tasks = cli.json("tasks", str(job_id))
    assert tasks["total"] == 2
    first = min(tasks["items"], key=lambda t: t["index"])
    assert cli("log", str(first["id"])).stdout == "frame 1 to 2\n"
    assert cli("log", f"a{first['attempt_id']}").stdout == "frame 1 to 2\n"
    assert "frame 1 to 2" in cli("log", str(first["id"]), "-f").stdout

    human = cli("job", str(job_id)).stdout
    assert "succeeded" in human and "2/2" in human


def test_a_frames_log_is_found_by_job_and_frame(db_cli: Cli) -> None:
    """"Frame 7 of job 12 looks wrong": `log --job --frame` finds its task (a stepped chunk, a list of
    frames, one of several layers), and says clearly when no task or several render it."""
    cli = db_cli
    stepped = cli.submit_cmd("--frames", "1-9x2", "--chunk", "2", "--", "echo", "frames", "{start}", "to", "{end}")
    # 1-10:3 is 1,4,7,10 then 3,6,9 then 2,5,8; its second chunk "10,3,5" is not bounded by 10 and 5
    listed = cli.submit_cmd("--frames", "1-10:3", "--chunk", "3", "--", "echo", "list", "{start}", "to", "{end}")
    layered = cli.farm.api.post("/jobs", {"name": "two layers", "layers": [
        {"name": name, "frames": "1-2", "args": {"command": ["echo", name, "{frame}"]}} for name in ("beauty", "mask")]})
    for job_id in (stepped, listed, layered["id"]):
        assert cli("wait", str(job_id), "--timeout", "60").returncode == 0

    assert cli("log", "--job", str(stepped), "--frame", "7").stdout == "frames 5 to 7\n"
    (task,) = cli.json("tasks", str(stepped), "--frame", "9")["items"]
    assert task["frames"] == "9"
    assert cli("log", "--job", str(listed), "--frame", "3").stdout == "list 10 to 5\n"
    missing = cli("log", "--job", str(listed), "--frame", "11", check=False)
    assert missing.returncode == 1 and f"job {listed} has no task rendering frame 11" in missing.stderr
    assert cli.json("tasks", str(stepped), "--frame", "4")["total"] == 0

    several = cli("log", "--job", str(layered["id"]), "--frame", "2", check=False)
    assert several.returncode == 1 and "is in 2 tasks" in several.stderr and "--layer" in several.stderr
    assert cli("log", "--job", str(layered["id"]), "--frame", "2", "--layer", "mask").stdout == "mask 2\n"
    wedged = cli.farm.api.post("/jobs", {"name": "wedge", "layers": [
        {"name": "sim", "frames": "1-2", "wedge": [16, 64], "args": {"command": ["echo", "{frame}", "{wedge}"]}}]})
    both = cli("log", "--job", str(wedged["id"]), "--frame", "2", check=False)
    assert both.returncode == 1 and "wedge 16" in both.stderr and "wedge 64" in both.stderr, both.stderr
    assert "give a task id" in both.stderr
    mixed = cli("log", "12", "--frame", "2", check=False)
    assert mixed.returncode == 2 and "--frame" in mixed.stderr


def test_failing_command_makes_wait_exit_1(db_cli: Cli) -> None:
    cli = db_cli
    job_id = cli.submit_cmd("--retries", "0", "--", "false")
    result = cli("wait", str(job_id), "--timeout", "60", check=False)
    assert result.returncode == 1
    # it says why: the failed attempts grouped by reason, with their nodes and tasks
    assert result.stdout.startswith(f"job {job_id} failed: 1 task failed — 'exit code 1' x1 on "), result.stdout
    task = cli.json("tasks", str(job_id))["items"][0]
    assert result.stdout.strip().endswith(f"(task {task['id']})") and task["reason"] == "exit code 1"
    shown = cli.json("task", str(task["id"]))
    assert shown["attempts"][0]["exit_code"] == 1 and shown["log_tail_attempt_id"] == shown["attempt_id"]


def test_a_failure_quotes_what_the_task_printed_last(db_cli: Cli, tmp_path: Path) -> None:
    """A failed exit says what the application printed last, and a line holding a NUL (which PostgreSQL's
    text cannot hold: the node's report was refused and dropped, and the task ran again and again) is
    kept as U+FFFD, in an exit's last line and in an error-pattern line alike."""
    cli = db_cli
    script = "echo rendering; printf 'ERROR: cannot open /tex/a.exr \\000!\\n' >&2; exit 3"
    exit_job = cli.submit_cmd("--retries", "0", "--shell", "--", script)
    spec = tmp_path / "error-line.json"
    spec.write_text(json.dumps({"name": "error line", "layers": [{"name": "a", "frames": "1", "retries": 0, "args": {
        "command": ["sh", "-c", "printf 'Fatal: \\000 no licence\\n'"], "error_patterns": ["^Fatal"]}}]}))
    line_job = int(cli("submit", str(spec)).stdout.strip())
    result = cli("wait", str(exit_job), "--timeout", "60", check=False)
    assert result.returncode == 1, result.stdout
    assert result.stdout.strip().endswith('last line: "ERROR: cannot open /tex/a.exr \ufffd!"'), result.stdout
    task = cli.json("tasks", str(exit_job))["items"][0]
    assert task["state"] == "failed" and task["reason"] == "exit code 3 (last line: ERROR: cannot open /tex/a.exr \ufffd!)"
    group = cli.farm.api.get(f"/jobs/{exit_job}/failures")["groups"][0]
    assert group["reason"] == "exit code 3" and group["last_line"] == "ERROR: cannot open /tex/a.exr \ufffd!"
    assert cli("wait", str(line_job), "--timeout", "60", check=False).returncode == 1
    task = cli.json("tasks", str(line_job))["items"][0]
    assert task["state"] == "failed" and task["reason"] == "error line: Fatal: \ufffd no licence" and task["tries"] == 1


def test_wait_timeout_exits_2(db_cli: Cli) -> None:
    cli = db_cli
    job_id = cli.submit_cmd("--", "sleep", "30")
    result = cli("wait", str(job_id), "--timeout", "1", check=False)
    assert result.returncode == 2
    cli("kill", str(job_id))


def test_log_follow_streams_a_running_task(db_cli: Cli) -> None:
    cli = db_cli
    job_id = cli.submit_cmd("--shell", "--", "for i in 1 2 3; do echo line $i; sleep 0.3; done")
    task_id = cli.json("tasks", str(job_id))["items"][0]["id"]
    # -f waits for the task's first attempt, then follows it to its end.
    result = cli("log", str(task_id), "-f")
    assert result.stdout == "line 1\nline 2\nline 3\n"


def test_jobs_json_parses_and_filters(cli: Cli) -> None:
    a = cli.submit_cmd("--name", "alpha shot", "--project", "show1", "--", "true")
    b = cli.submit_cmd("--name", "beta shot", "--project", "show2", "--", "true")
    for job_id in (a, b):
        cli("wait", str(job_id), "--timeout", "60")
    answer = cli.json("jobs")
    assert {a, b} <= {item["id"] for item in answer["items"]}
    assert [item["id"] for item in cli.json("jobs", "--project", "show2")["items"]] == [b]
    assert [item["id"] for item in cli.json("jobs", "--name", "alpha")["items"]] == [a]
    assert cli.json("jobs", "--state", "succeeded")["total"] >= 2
    assert "alpha shot" in cli("jobs").stdout


def test_pause_resume_priority_kill_retry_skip(cli: Cli) -> None:
    job_id = cli.submit_cmd("--frames", "1-6", "--retries", "0", "--", "sleep", "120")  # killed below; outlives slow CLI calls
    paused = json.loads(cli("pause", str(job_id), "--json").stdout)
    assert paused["paused"] is True
    resumed = json.loads(cli("resume", str(job_id), "--json").stdout)
    assert resumed["paused"] is False
    assert json.loads(cli("priority", str(job_id), "77", "--json").stdout)["priority"] == 77
    assert cli.json("job", str(job_id))["priority"] == 77

    killed = json.loads(cli("kill", str(job_id), "--json").stdout)
    assert killed["state"] == "killed"
    assert cli("wait", str(job_id), "--timeout", "30", check=False).returncode == 1

    retried = json.loads(cli("retry", str(job_id), "--json").stdout)
    assert retried["state"] not in ("killed", "failed")
    tasks = cli.json("tasks", str(job_id))["items"]
    skipped = cli("skip", str(tasks[-1]["id"]))
    assert skipped.stdout.strip() == f"task {tasks[-1]['id']}: skipped"
    assert cli.json("job", str(job_id))["counts"]["skipped"] == 1
    cli("kill", str(job_id))


def test_retry_single_task(cli: Cli) -> None:
    job_id = cli.submit_cmd("--frames", "1-2", "--retries", "0", "--", "sh", "-c", "test {frame} = 1")
    assert cli("wait", str(job_id), "--timeout", "60", check=False).returncode == 1
    failed = cli.json("tasks", str(job_id), "--state", "failed")["items"]
    assert [t["frames"] for t in failed] == ["2"]
    cli("retry", str(job_id), "--task", str(failed[0]["id"]))
    assert cli("wait", str(job_id), "--timeout", "60", check=False).returncode == 1
    attempts = cli.json("tasks", str(job_id), "--state", "failed")["items"]
    assert attempts and attempts[0]["id"] == failed[0]["id"]


def test_node_drain_disable_enable(cli: Cli) -> None:
    assert "n1" in [n["name"] for n in cli.json("nodes")["items"]]
    assert json.loads(cli("node", "drain", "n1", "--json").stdout)["admin_state"] == "draining"
    assert cli("node", "disable", "n1").stdout.strip() == "node n1: disabled (up)"
    assert [n["admin_state"] for n in cli.json("nodes")["items"] if n["name"] == "n1"] == ["disabled"]
    assert cli("node", "enable", "n1").stdout.strip() == "node n1: enabled (up)"
    assert "n1" in cli("node", "show", "n1").stdout
    assert "n1" in cli("nodes").stdout


def test_submit_file_dry_run_and_submit(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: from file\nlayers:\n  - name: a\n    frames: 1-3\n"
                    "    args: {command: [echo, 'f{frame}']}\n")
    dry = json.loads(cli("submit", str(spec), "--dry-run", "--json").stdout)
    assert dry["valid"] is True
    assert [t["argv"] for t in dry["tasks"]] == [["echo", "f1"], ["echo", "f2"], ["echo", "f3"]]
    job = json.loads(cli("submit", str(spec), "--json").stdout)
    assert job["name"] == "from file"
    # a dry run refuses what the submit would (no node has 64 cores): JSON on stdout, exit 1
    too_big = tmp_path / "big.yaml"
    too_big.write_text("name: big\nlayers:\n  - name: a\n    resources: {cores: 64}\n    args: {command: [echo]}\n")
    result = cli("submit", str(too_big), "--dry-run", "--json", check=False)
    assert result.returncode == 1
    refused = json.loads(result.stdout)
    assert refused["valid"] is False and refused["errors"][0]["field"] == "layers.0.resources"
    assert cli("wait", str(job["id"]), "--timeout", "60").returncode == 0


def test_example_specs_submit(cli: Cli) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "jobs"
    for name in ("simple.yaml", "layers.yaml"):
        job_id = int(cli("submit", str(examples / name)).stdout)
        assert cli("wait", str(job_id), "--timeout", "90").returncode == 0, name


def test_bad_input_gives_clear_errors(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlayers:\n  - name: a\n   frames: 1\n")
    result = cli("submit", str(bad), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {bad}, line 4")
    assert "Traceback" not in result.stderr and result.stdout == ""

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("name: x\nlayers:\n  - name: a\n    frames: abc\n")
    result = cli("submit", str(invalid), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "layers.0.frames" in result.stderr

    result = cli("job", "99999", check=False)
    assert result.returncode == 1 and result.stderr.startswith("error: ")

    result = cli("jobs", "--token", "wrong", check=False)
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_unreachable_server(cli: Cli) -> None:
    result = cli("jobs", "--server", "http://127.0.0.1:9", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach Thresher server")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_console_script_runs_as_a_process(cli: Cli) -> None:
    """The installed `thresher` entry point, as a script calls it: its exit codes and its output."""
    thresher = str(Path(sys.executable).with_name("thresher"))
    env = cli.env

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([thresher, *args], env=env, capture_output=True, text=True, timeout=60)

    job_id = int(run("submit-cmd", "--name", "console script", "--", "true").stdout)
    waited = run("wait", str(job_id), "--timeout", "60")
    assert (waited.returncode, waited.stdout.strip()) == (0, f"job {job_id} succeeded"), waited.stderr
    assert [j["id"] for j in json.loads(run("jobs", "--name", "console script", "--json").stdout)["items"]] == [job_id]
    missing = run("job", "99999")
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr


def test_thresher_agent_command_registers_with_its_apps(sqlite_farm: Farm, tmp_path: Path) -> None:
    """`thresher agent` (the Typer command, not `python -m thresher.agent`) joins the farm with its settings."""
    farm = sqlite_farm
    env = {**farm.env, "THRESHER_ENROLL_TOKEN": farm.enroll_token}
    proc = subprocess.Popen([*THRESHER, "agent", "--server", farm.server_url, "--name", "cli-node", "--cores", "2",
                             "--memory", "2G", "--tags", "blender,linux", "--app", "blender=/opt/blender/blender",
                             "--state-dir", str(tmp_path / "state"), "--heartbeat", "0.5"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        node = farm.wait_for(lambda: next((n for n in farm.api.get("/nodes")["items"] if n["name"] == "cli-node"), None),
                             timeout=30, message="the CLI agent to register")
        assert (node["cores"], node["memory_mb"], node["tags"]) == (2, 2048, ["blender", "linux"])
        assert node["apps"]["blender"] == "/opt/blender/blender"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    bad = subprocess.run([*THRESHER, "agent", "--server", farm.server_url, "--app", "blender"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "NAME=PATH" in bad.stderr
