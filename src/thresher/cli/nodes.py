"""Node commands: list the farm's machines and take them in and out of service."""

from __future__ import annotations

from typing import Annotated

import typer

from thresher.cli.common import JsonOpt, ServerOpt, ThresherGroup, TokenOpt, connect, console, emit_json, emit_listing
from thresher.cli.views import node_view, nodes_table
from thresher.model.node_chips import NODE_CHIPS
from thresher.wire.nodes import Node

node_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True,
                       help="Show one node, or enable, disable or drain it.")

NodeArg = Annotated[str, typer.Argument(metavar="NAME", help="Node name or id.", show_default=False)]


def nodes(state: Annotated[str | None, typer.Option(
              "--state", help=f"Only the nodes that count as this: {', '.join(NODE_CHIPS)}.",
              show_default=False)] = None,
          name: Annotated[str | None, typer.Option(
              "--name", help="Only the nodes whose name or host name holds this (any case).",
              show_default=False)] = None,
          json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """List the farm's nodes: state, resources, what they run."""
    if state is not None and state not in NODE_CHIPS:
        raise typer.BadParameter(f"unknown state {state!r}: use one of {', '.join(NODE_CHIPS)}",
                                 param_hint="--state")
    with connect(server, token) as client:
        answer = client.all_nodes(state=state, name=name)
    if json_out:
        emit_listing(answer)
    else:
        console.print(nodes_table(answer))


def _node_action(action: str, name: str, server: str | None, token: str | None, json_out: bool) -> None:
    with connect(server, token) as client:
        answer: Node = getattr(client, action)(name)
    if json_out:
        emit_json(answer)
    else:
        typer.echo(f"node {answer.name}: {answer.admin_state} ({answer.state})")


@node_app.command("show")
def show(name: NodeArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Show one node in detail."""
    with connect(server, token) as client:
        answer = client.node(name)
    if json_out:
        emit_json(answer)
    else:
        console.print(node_view(answer))


@node_app.command("enable")
def enable(name: NodeArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Let a node take work again."""
    _node_action("enable_node", name, server, token, json_out)


@node_app.command("disable")
def disable(name: NodeArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Stop giving a node work."""
    _node_action("disable_node", name, server, token, json_out)


@node_app.command("drain")
def drain(name: NodeArg, json_out: JsonOpt = False, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Let a node finish what it runs, then take nothing new."""
    _node_action("drain_node", name, server, token, json_out)
