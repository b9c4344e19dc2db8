"""Fixtures shared by the test modules: the storage backends.

``database_url`` runs a test once per backend: SQLite (a file in the test's folder) and
PostgreSQL (a fresh database on the throwaway server the run starts once). Without
PostgreSQL installed, the PostgreSQL runs are skipped, saying why; with
``EMBARGO_REQUIRE_POSTGRES=1`` (set by CI) they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.postgres_server import REQUIRE_VARIABLE, PostgresMissing, PostgresServer

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except PostgresMissing as missing:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{missing} ({REQUIRE_VARIABLE}=1 makes this a failure)")
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database's URL."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A new database on each backend in turn: ``sqlite:///...`` or ``postgresql://...``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/embargo.db"
    return request.getfixturevalue("postgres_url")
