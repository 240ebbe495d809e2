"""The served config is an in-memory snapshot: a fetch (200 or 304) does no database query."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from setpoint._server.app import create_app
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.settings import Settings
from setpoint._server.storage import open_storage
from setpoint._server.storage.sql import SqlStorage
from tests.server.support import Project, free_port, make_project


class QueryCounter:
    """Counts the SQL statements request handlers run (background pollers excluded)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, *_args: Any) -> None:
        if not threading.current_thread().name.startswith("setpoint-"):
            self.count += 1


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread of this process; yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def in_process_server(tmp_path: Path) -> Iterator[tuple[str, SqlStorage, QueryCounter]]:
    storage = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    app = create_app(Settings(data_dir=tmp_path), storage)
    counter = QueryCounter(storage.engine)
    try:
        with serve_in_thread(app) as url:
            yield url, storage, counter
    finally:
        storage.dispose()


def test_fetches_do_no_database_work(in_process_server: tuple[str, SqlStorage, QueryCounter]) -> None:
    url, storage, counter = in_process_server
    project: Project = make_project(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")))
    with httpx.Client(base_url=url, headers=project.headers()) as client:
        client.post("/v1/variables/", json={"name": "cached"}).raise_for_status()
        first = client.get("/v1/variables/")  # builds the snapshot
        etag = first.headers["etag"]
        before = counter.count
        for _ in range(20):
            assert client.get("/v1/variables/").status_code == 200
            assert client.get("/v1/variables/", headers={"If-None-Match": etag}).status_code == 304
            assert client.get("/v1/variables/", headers={"User-Agent": "logfire/5.2.0"}).status_code == 200
        assert counter.count == before
        # A change rebuilds the snapshot once.
        client.put("/v1/variables/cached/", json={"name": "cached", "description": "new"}).raise_for_status()
        after_write = counter.count
        assert client.get("/v1/variables/", headers={"If-None-Match": etag}).status_code == 200
        rebuilt = counter.count
        assert rebuilt > after_write
        assert client.get("/v1/variables/").status_code == 200
        assert counter.count == rebuilt


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'wal.sqlite'}")
    try:
        with storage.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 10_000
    finally:
        storage.dispose()


def test_readyz_says_when_the_schema_is_not_migrated(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.migrate_on_start = False
    storage = open_storage(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        with serve_in_thread(create_app(settings, storage)) as url:
            assert httpx.get(f"{url}/healthz").status_code == 200
            response = httpx.get(f"{url}/readyz")
    finally:
        storage.dispose()
    assert response.status_code == 503 and "setpoint migrate" in response.json()["detail"]
