"""`thresher secret rotate`: a new server secret for dashboard session cookies.

The secret lives in the server's data folder (`session.secret`, mode 0600), not in the database, so
a database backup is no key to a dashboard session. Rotating it ends every session at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from thresher.cli.common import ThresherGroup
from thresher.client.config import data_dir

secret_app = typer.Typer(cls=ThresherGroup, no_args_is_help=True,
                         help="The server secret that signs dashboard session cookies.")


@secret_app.command("rotate")
def rotate(
    data: Annotated[Path | None, typer.Option("--data", "--data-dir", help="The server's data folder "
                                              "(default: the user data folder, as `thresher server`).",
                                              show_default=False)] = None,
) -> None:
    """Replace the dashboard session secret: every dashboard session ends and people log in again.

    Servers using this data folder notice at once: they read the file again when it changes.

    A server on another machine needs a copy of the new session.secret (keep it mode 0600).

    API tokens are not touched.
    """
    from thresher.server.dashboard.secret import rotate_secret

    folder = (data or data_dir()).expanduser().resolve()
    if not folder.is_dir():
        raise typer.BadParameter(f"no server data folder at {folder}", param_hint="--data")
    path = rotate_secret(folder)
    typer.echo(f"new session secret in {path}: every dashboard session has ended")
