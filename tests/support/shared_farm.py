"""One real farm shared by a test module, on SQLite and on PostgreSQL (a module-scoped fixture's body).

For modules whose calls are refused and change nothing (or add a row the next test does not mind): one
server per database instead of one per test.
"""

from __future__ import annotations

from typing import Iterator

import pytest
from tests.support.farm import Farm

DATABASES = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="pg", marks=pytest.mark.postgres)]


def shared_farm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Farm]:
    """Start the farm for `request.param` ("sqlite" or "postgresql"), yield it, stop it."""
    root = tmp_path_factory.mktemp(f"{name}-{request.param}")
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    url = postgres.create_database() if postgres else f"sqlite:///{root / 'thresher.db'}"
    farm = Farm(url, root).start()
    try:
        yield farm
    finally:
        farm.stop()
        if postgres:
            postgres.drop_database(url)


def attach_logs(request: pytest.FixtureRequest, farm: Farm) -> None:
    """Hand the shared farm to tests/conftest.py's report hook, which attaches its process logs."""
    for plugin in request.config.pluginmanager.get_plugins():
        key = getattr(plugin, "FARMS_KEY", None)
        if key is not None:
            request.node.stash[key] = [farm]
