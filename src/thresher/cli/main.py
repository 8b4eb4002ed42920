"""The `thresher` command: wires the command modules into one Typer app.

Commands live in small modules by subject (jobs, logs, nodes, studio, farm, demo); this file only names them,
so `thresher --help` reads as a table of contents.
"""

from __future__ import annotations

import os

import typer

from thresher import __version__
from thresher.cli import (
    audit,
    demo,
    deps,
    enroll,
    farm,
    jobs,
    logs,
    nodes,
    people,
    retention,
    secret,
    services,
    simulate,
    studio,
    task,
    watch,
)
from thresher.cli.common import ThresherGroup
from thresher.client.tls import ENV_CA_FILE

app = typer.Typer(
    cls=ThresherGroup,
    name="thresher",
    help="Thresher render farm: run a farm, submit jobs, watch and steer them.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"thresher {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    ca_file: str | None = typer.Option(
        None, "--ca-file", metavar="FILE", show_default=False,
        help="CA certificate(s) that signed an https server's certificate (default: $THRESHER_CA_FILE, then "
             "`ca_file` of the saved client.json, then the public CAs)."),
) -> None:
    """Thresher render farm: run a farm, submit jobs, watch and steer them."""
    if ca_file:  # every client this command makes reads it (client/tls.py), the agent's too
        os.environ[ENV_CA_FILE] = ca_file


FARM = "Run a farm"
JOBS = "Jobs"
TASKS = "Tasks"
NODES = "Nodes"

app.command("up", rich_help_panel=FARM)(farm.up)
app.command("server", rich_help_panel=FARM)(farm.server)
app.command("agent", rich_help_panel=FARM)(farm.agent)
app.command("demo", rich_help_panel=FARM)(demo.demo)
app.command("simulate", rich_help_panel=FARM)(simulate.simulate)
app.add_typer(secret.secret_app, name="secret", rich_help_panel=FARM)

app.command("submit", rich_help_panel=JOBS)(jobs.submit)
app.command("submit-cmd", rich_help_panel=JOBS,
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                              "allow_interspersed_args": False})(jobs.submit_cmd)
app.command("jobs", rich_help_panel=JOBS)(jobs.jobs)
app.command("job", rich_help_panel=JOBS)(watch.job)
app.command("wait", rich_help_panel=JOBS)(watch.wait)
app.command("why", rich_help_panel=JOBS)(watch.why)
app.command("kill", rich_help_panel=JOBS)(jobs.kill)
app.command("pause", rich_help_panel=JOBS)(jobs.pause)
app.command("resume", rich_help_panel=JOBS)(jobs.resume)
app.command("retry", rich_help_panel=JOBS)(jobs.retry)
app.command("priority", rich_help_panel=JOBS)(jobs.priority)
app.command("release", rich_help_panel=JOBS)(jobs.release)
app.command("scout", rich_help_panel=JOBS)(jobs.scout)
app.command("templates", rich_help_panel=JOBS)(jobs.templates)
app.command("blocklist", rich_help_panel=JOBS)(jobs.blocklist)
app.command("deps", rich_help_panel=JOBS)(deps.deps)
app.command("undepend", rich_help_panel=JOBS)(deps.undepend)
app.command("archive", rich_help_panel=JOBS)(retention.archive)
app.command("delete", rich_help_panel=JOBS)(retention.delete)

app.command("tasks", rich_help_panel=TASKS)(jobs.tasks)
app.command("task", rich_help_panel=TASKS)(task.task)
app.command("log", rich_help_panel=TASKS)(logs.log)
app.command("attempts", rich_help_panel=TASKS)(logs.attempts)
app.command("skip", rich_help_panel=TASKS)(jobs.skip)
app.command("retry-task", rich_help_panel=TASKS)(jobs.retry_task)
app.command("kill-task", rich_help_panel=TASKS)(jobs.kill_task)

app.command("nodes", rich_help_panel=NODES)(nodes.nodes)
app.add_typer(nodes.node_app, name="node", rich_help_panel=NODES)
nodes.node_app.command("pool")(studio.node_pool)
app.add_typer(enroll.enroll_app, name="enroll-token", rich_help_panel=NODES)

STUDIO = "Studio scheduling"
app.add_typer(studio.project_app, name="project", rich_help_panel=STUDIO)
app.add_typer(studio.folder_app, name="folder", rich_help_panel=STUDIO)
app.add_typer(studio.pool_app, name="pool", rich_help_panel=STUDIO)
app.add_typer(studio.limit_app, name="limit", rich_help_panel=STUDIO)
app.add_typer(services.service_app, name="service", rich_help_panel=STUDIO)
app.command("stake", rich_help_panel=STUDIO)(studio.stake)
app.command("urgent", rich_help_panel=JOBS)(studio.urgent)
app.command("move", rich_help_panel=JOBS)(studio.move)

PEOPLE = "People"
app.add_typer(people.user_app, name="user", rich_help_panel=PEOPLE)
app.add_typer(people.token_app, name="token", rich_help_panel=PEOPLE)
app.command("login", rich_help_panel=PEOPLE)(people.login)
app.command("logout", rich_help_panel=PEOPLE)(people.logout)
app.command("audit", rich_help_panel=PEOPLE)(audit.audit)
studio.project_app.add_typer(people.member_app, name="member")


def main() -> None:
    """Entry point for `python -m thresher.cli`."""
    app()
