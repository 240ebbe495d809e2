"""Fixtures of the segments tests: one in-process server per test module and backend, a fresh project per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.segments.support import App, running_app
from tests.server.support import Project, make_project


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """A server (uvicorn in a thread) on a fresh SQLite file or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        with running_app(tmp_path_factory.mktemp("segments")) as running:
            yield running
        return
    import psycopg
    from psycopg import sql

    server_url: str = request.getfixturevalue("postgres_server_url")
    name = f"setpoint_segments_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = f"{server_url.rpartition('/')[0]}/{name}"
        with running_app(tmp_path_factory.mktemp("segments"), database_url=url) as running:
            yield running
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def project(app: App) -> Project:
    """A fresh project with a read,write and a read-only key."""
    return make_project(app.ctx)
