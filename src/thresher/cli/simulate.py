"""`thresher simulate SCENARIO.yaml`: the farm simulator (`thresher.sim`) from the command line.

It needs no server: the simulator runs the server's own dispatch and lifecycle code on a database of
its own (a fresh SQLite file by default, `--db` for PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from thresher.sim.scenario import ScenarioError, load_scenario, with_node_counts


def simulate(
    scenario: Path = typer.Argument(..., help="The scenario (YAML): nodes, projects, limits and a trace of jobs."),
    compare: Path | None = typer.Option(None, "--compare", help="A second scenario, run and shown beside the first."),
    nodes: list[str] = typer.Option([], "--nodes", help="GROUP=+N, GROUP=-N or GROUP=N: a second run with node "
                                                        "groups resized, shown beside the first (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: a fresh SQLite file in a temp folder)."),
) -> None:
    """Simulate the farm on a scenario in virtual time, with the server's real dispatch rule."""
    err = Console(stderr=True)
    try:
        first = load_scenario(scenario)
        runs = [first]
        if compare is not None:
            runs.append(load_scenario(compare))
        if nodes:
            resized = with_node_counts(first, nodes)
            runs.append(resized.model_copy(update={"name": f"{first.name} ({', '.join(nodes)})"}))
    except ScenarioError as error:
        err.print(f"[red]{error}[/red]", markup=True, highlight=False)
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
        print_reports(Console(), reports)
        if html is not None:
            Console().print(f"HTML report: {html}")
