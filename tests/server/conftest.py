"""Server test fixtures: storages on real SQLite and PostgreSQL, real server processes over HTTP.

PostgreSQL: one throwaway database per test session (created from ``tests.support.POSTGRES_URL``, dropped
at the end); tests isolate themselves with a fresh project each. Without PostgreSQL these tests skip with
the reason, or fail when ``SETPOINT_TEST_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import Storage, open_storage
from tests.server.support import Project, ServerProcess, make_project

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_session_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database for this test session, migrated, dropped afterwards."""
    import psycopg
    from psycopg import sql

    server_url: str = request.getfixturevalue("postgres_server_url")
    name = f"setpoint_server_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{server_url.rpartition('/')[0]}/{name}"
    storage = open_storage(url)
    storage.migrate()
    storage.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def sqlite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory shared by one test module's SQLite server."""
    return tmp_path_factory.mktemp("setpoint-data")


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, sqlite_dir: Path) -> str:
    """The database URL of the backend a test module is parametrized with."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_session_url")
        return url
    return f"sqlite:///{sqlite_dir / 'setpoint.db'}"


@pytest.fixture
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A migrated storage: a fresh SQLite file, or the session's PostgreSQL database (parametrize ``backend``)."""
    backend = getattr(request, "param", "sqlite")
    url = request.getfixturevalue("pg_session_url") if backend == "postgres" else f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = open_storage(url)
    store.migrate()
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def server(database_url: str, sqlite_dir: Path) -> Iterator[ServerProcess]:
    """A real ``setpoint serve`` process on a free port, for one test module."""
    proc = ServerProcess(database_url=database_url, data_dir=sqlite_dir)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def server_ctx(database_url: str) -> Iterator[ServiceContext]:
    """Services on the server's database from the test process (to create projects and keys)."""
    store = open_storage(database_url)
    try:
        yield ServiceContext(storage=store, sink=ChangeSink(origin="tests"))
    finally:
        store.dispose()


@pytest.fixture
def project(server_ctx: ServiceContext) -> Project:
    """A fresh project on the server's database with a read,write key and a read-only key."""
    return make_project(server_ctx)
