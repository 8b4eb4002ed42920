"""`thresher simulate SCENARIO.yaml`: the farm simulator (`thresher.sim`) from the command line.

It needs no server: the simulator runs the server's own dispatch and lifecycle code on a database of
its own (a fresh SQLite file by default, `--db` for PostgreSQL). With `--from-server` it starts from a
live farm instead, read through the API (`sim/snapshot.py`): its nodes, studio records and unfinished
jobs, with a scenario given beside it laid over them (its settings, and what it adds)."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from thresher.cli.common import ServerOpt, TokenOpt, connect
from thresher.sim.scenario import Scenario, ScenarioError, load_scenario, read_scenario_data, with_node_counts


def simulate(
    scenario: str | None = typer.Argument(None, metavar="SCENARIO", help=(
        "The scenario (YAML): nodes, projects, limits and a trace of jobs. With --from-server: what to add to the "
        "farm (optional), or the server's URL (`--from-server URL`).")),
    compare: Path | None = typer.Option(None, "--compare", help="A second scenario, run and shown beside the first."),
    nodes: list[str] = typer.Option([], "--nodes", help="GROUP=+N, GROUP=-N or GROUP=N: a second run with node "
                                                        "groups resized, shown beside the first (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: a fresh SQLite file in a temp folder)."),
    from_server: bool = typer.Option(False, "--from-server", help="Start from the live farm (--server, else the "
                                                                  "configured one): its nodes, projects, limits, "
                                                                  "services and unfinished jobs, from now."),
    frame_time: float = typer.Option(60.0, "--frame-time", min=0.001, help="With --from-server: seconds per frame of "
                                                                          "a layer the farm has no estimate for yet."),
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Simulate the farm on a scenario in virtual time, with the server's real dispatch rule."""
    err = Console(stderr=True)
    try:
        if from_server:
            if scenario is not None and server is None and _is_url(scenario):
                server, scenario = scenario, None   # `--from-server URL`
            first = _from_server(server, token, Path(scenario) if scenario else None, frame_time)
        elif scenario is None:
            raise ScenarioError("give a scenario (YAML), or --from-server to start from the live farm")
        else:
            first = load_scenario(Path(scenario))
        runs = [first]
        if compare is not None:
            runs.append(load_scenario(compare))
        if nodes:
            resized = with_node_counts(first, nodes)
            runs.append(resized.model_copy(update={"name": f"{first.name} ({', '.join(nodes)})"}))
    except ScenarioError as error:
        err.print(f"[red]{escape(str(error))}[/red]", markup=True, highlight=False)
        raise typer.Exit(2) from None
    # the server's code is imported only here: `thresher --help` stays quick
    from thresher.sim.engine import simulate as run_simulation
    from thresher.sim.render import print_reports, to_html, to_json
    from thresher.sim.report import build

    reports = [build(run_simulation(s, db)) for s in runs]
    if html is not None:
        html.write_text(to_html(reports))
    if as_json:
        typer.echo(to_json(reports))
    else:
        out = Console(markup=False)  # names in a scenario are shown as written, brackets and all
        print_reports(out, reports)
        if html is not None:
            out.print(f"HTML report: {html}")


def _is_url(text: str) -> bool:
    """A server's address rather than a scenario file (`http://host:8765`, `host:8765`)."""
    return not Path(text).exists() and re.match(r"^(https?://|[A-Za-z0-9.\-]+:\d+/?$)", text) is not None


def _from_server(server: str | None, token: str | None, scenario: Path | None, frame_time: float) -> Scenario:
    """The live farm as a scenario, with `scenario` (if given) laid over it."""
    from thresher.sim.snapshot import merged, read_farm, scenario_of

    extra = read_scenario_data(scenario) if scenario is not None else None
    with connect(server, token) as api:
        farm = read_farm(api)
        where = api.server
    return merged(scenario_of(farm, frame_time, name=f"farm at {where}"), extra,
                  f"{where}" + (f" with {scenario}" if scenario is not None else ""))
