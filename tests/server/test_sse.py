"""``GET /v1/variable-updates/``: keep-alive comments and one event per change, per project."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from setpoint._server.services.context import ServiceContext
from tests.server.sse_support import SSEReader
from tests.server.support import Project, ServerProcess, make_project


@pytest.fixture(scope="module")
def fast_keepalive_server(sqlite_dir: Path) -> Iterator[ServerProcess]:
    """A server sending keep-alive comments every 0.3 s."""
    proc = ServerProcess(database_url=f"sqlite:///{sqlite_dir / 'setpoint.db'}", data_dir=sqlite_dir, keepalive=0.3)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def sse_project(fast_keepalive_server: ServerProcess) -> Project:
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.storage import open_storage

    storage = open_storage(fast_keepalive_server.database_url)
    try:
        return make_project(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")))
    finally:
        storage.dispose()


def test_keep_alive_comments(fast_keepalive_server: ServerProcess, sse_project: Project) -> None:
    with SSEReader(fast_keepalive_server.url, sse_project.rw_key) as reader:
        time.sleep(1.0)
    comments = []
    while not reader.events.empty():
        _, kind, payload = reader.events.get()
        assert kind == "comment"
        comments.append(payload)
    assert reader.status_code == 200
    assert comments[0] == "connected"
    assert comments.count("keep-alive") >= 2


def test_an_event_per_create_update_delete(fast_keepalive_server: ServerProcess, sse_project: Project) -> None:
    body = {"name": "live", "rollout": {"labels": {}}, "overrides": []}
    with (
        SSEReader(fast_keepalive_server.url, sse_project.rw_key) as reader,
        fast_keepalive_server.client(sse_project) as client,
    ):
        client.post("/v1/variables/", json=body).raise_for_status()
        assert reader.next_data()[1] == {"event": "created", "name": "live", "entity": "variable"}
        client.put("/v1/variables/live/", json={**body, "description": "d"}).raise_for_status()
        assert reader.next_data()[1] == {"event": "updated", "name": "live", "entity": "variable"}
        label = {"target_type": "version", "serialized_value": "1"}
        client.put("/v1/variables/live/labels/prod/", json=label).raise_for_status()
        assert reader.next_data()[1]["event"] == "updated"
        client.delete("/v1/variables/live/").raise_for_status()
        assert reader.next_data()[1] == {"event": "deleted", "name": "live", "entity": "variable"}


def test_events_stay_in_their_project(fast_keepalive_server: ServerProcess, sse_project: Project) -> None:
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.storage import open_storage

    storage = open_storage(fast_keepalive_server.database_url)
    try:
        other = make_project(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")))
    finally:
        storage.dispose()
    with (
        SSEReader(fast_keepalive_server.url, sse_project.rw_key) as mine,
        fast_keepalive_server.client(other) as theirs,
        fast_keepalive_server.client(sse_project) as client,
    ):
        theirs.post("/v1/variables/", json={"name": "theirs"}).raise_for_status()
        client.post("/v1/variables/", json={"name": "mine"}).raise_for_status()
        assert mine.next_data()[1]["name"] == "mine"


def test_shutdown_ends_open_streams(tmp_path: Path) -> None:
    proc = ServerProcess(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path)
    proc.start()
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.storage import open_storage

    storage = open_storage(proc.database_url)
    try:
        project = make_project(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")))
    finally:
        storage.dispose()
    with SSEReader(proc.url, project.rw_key) as reader:
        started = time.monotonic()
        output = proc.stop()
        assert reader.closed.wait(10)
    assert time.monotonic() - started < 8
    assert "Setpoint stopped." in output
