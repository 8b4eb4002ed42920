"""Fixtures shared by the whole suite.

- `postgres` (session): a private PostgreSQL server started with initdb/pg_ctl in a temp folder.
- `pg_url`: a fresh, empty PostgreSQL database on it (`postgresql://postgres@127.0.0.1:<port>/<db>`).
- `db_url`: parametrized `sqlite` / `pg`: a fresh database URL of each kind.
- `make_farm`: factory `make_farm(db_url=None, **Farm kwargs) -> Farm` (started; stopped at teardown).
- `farm`: a started real server (subprocess) on `db_url`, no agents; one run per database kind.
- `sqlite_url`: a fresh SQLite database URL only.
- `slapd` (session): a private OpenLDAP server (Debian's slapd) in a temp folder, for the LDAP logins.

When a test fails, the tails of every farm process's output are attached to its report.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer, PostgresUnavailable  # noqa: E402

FARMS_KEY = pytest.StashKey[list]()

# pytest-xdist's workers inherit COLUMNS=80 and LINES=24 from execnet, unlike a plain pytest run; the
# CLI would then cut its piped output at 80 columns. Tests that need a width set their own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


# ---------------------------------------------------------------- databases
@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The suite's own PostgreSQL server. Missing binaries fail loudly: the test command installs them."""
    try:
        server = PostgresServer(fast=True).start()
    except PostgresUnavailable as exc:
        pytest.fail(f"cannot start the test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def slapd() -> Iterator[Any]:
    """The suite's own OpenLDAP server (tests/support/slapd.py). A missing slapd fails loudly: setup.sh installs it."""
    from tests.support.slapd import SlapdServer, SlapdUnavailable

    try:
        server = SlapdServer().start()
    except SlapdUnavailable as exc:
        pytest.fail(f"cannot start the test LDAP server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh empty PostgreSQL database (dropped, with FORCE, after the test)."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file URL (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'thresher.db'}"


@pytest.fixture(params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="pg", marks=pytest.mark.postgres),
])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL; every test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'thresher.db'}"
    return request.getfixturevalue("pg_url")


# ---------------------------------------------------------------- real farms
@pytest.fixture
def make_farm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`make_farm(db_url=None, **kwargs)`: start a real server in a subprocess; returns a `Farm`.

    Without `db_url`, a fresh SQLite database is used. kwargs go to `Farm` (node_timeout, server_args,
    env). Every farm is stopped at teardown, and its logs are attached to a failing test's report.
    """
    from tests.support.farm import Farm

    farms: list[Farm] = []
    request.node.stash[FARMS_KEY] = farms

    def factory(db_url: str | None = None, *, start: bool = True, **kwargs: Any) -> Farm:
        root = tmp_path / f"farm{len(farms)}"
        url = db_url or f"sqlite:///{root / 'thresher.db'}"
        root.mkdir(parents=True, exist_ok=True)
        farm = Farm(url, root, **kwargs)
        farms.append(farm)
        if start:
            farm.start()
        return farm

    yield factory
    for farm in reversed(farms):
        farm.stop()


@pytest.fixture
def farm(make_farm: Callable[..., Any], db_url: str) -> Any:
    """A started real server on `db_url` (sqlite and pg), no agents. Add them with `farm.start_agent()`."""
    return make_farm(db_url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Attach farm process logs to the report of a failing setup, call or teardown."""
    report = yield
    if report.failed:
        farms = item.stash.get(FARMS_KEY, [])
        for index, farm in enumerate(farms):
            try:
                text = farm.logs_tail(80)
            except Exception as exc:  # noqa: BLE001 - diagnostics must not break reporting
                text = f"(could not read farm logs: {exc!r})"
            if text:
                report.sections.append((f"farm {index} process logs ({farm.root})", text))
    return report
