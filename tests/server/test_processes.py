"""Whole-server behaviour across processes: restarts keep data, two servers on one PostgreSQL act as one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import open_storage
from tests.server.logfire_support import wait_for
from tests.server.sse_support import SSEReader
from tests.server.support import KEY_PATTERN, Project, ServerProcess, make_project

pytestmark = pytest.mark.slow


def _project(database_url: str) -> Project:
    storage = open_storage(database_url)
    try:
        return make_project(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")))
    finally:
        storage.dispose()


def test_first_start_creates_and_migrates_sqlite_and_prints_how_to_log_in(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    proc = ServerProcess(database_url="", data_dir=data_dir, admin_password="")
    proc.start()
    output = proc.stop()
    assert (data_dir / "setpoint.db").exists()
    assert f"Setpoint is listening on {proc.url}" in output
    assert "log in at" in output and "with password " in output  # generated, shown once
    first_key = KEY_PATTERN.search(output)
    assert first_key is not None

    again = ServerProcess(database_url="", data_dir=data_dir, admin_password="", port=proc.port)
    again.start()
    try:
        # The first key works, and nothing secret is printed a second time.
        response = httpx.get(f"{again.url}/v1/variables/", headers={"Authorization": f"bearer {first_key.group()}"})
        assert response.status_code == 200
    finally:
        second_output = again.stop()
    assert KEY_PATTERN.search(second_output) is None
    assert "with password " not in second_output


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_restart_keeps_data(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_database") if backend == "postgres" else f"sqlite:///{tmp_path / 'db'}"
    proc = ServerProcess(database_url=url, data_dir=tmp_path)
    proc.start()
    project = _project(url)
    labels = {"prod": {"target_type": "version", "serialized_value": '"kept"'}}
    with proc.client(project) as client:
        client.post("/v1/variables/", json={"name": "durable", "labels": labels}).raise_for_status()
        client.post("/v1/variable-types/", json={"name": "T", "json_schema": {"type": "string"}}).raise_for_status()
        before = client.get("/v1/variables/")
    proc.stop()
    restarted = ServerProcess(database_url=url, data_dir=tmp_path, port=proc.port)
    restarted.start()
    try:
        with restarted.client(project) as client:
            after = client.get("/v1/variables/")
            types = client.get("/v1/variable-types/").json()
    finally:
        restarted.stop()
    assert after.json() == before.json()
    assert after.headers["etag"] == before.headers["etag"]
    assert after.json()["variables"]["durable"]["labels"]["prod"]["serialized_value"] == '"kept"'
    assert [t["name"] for t in types] == ["T"]


@pytest.fixture
def two_servers(postgres_database: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on one PostgreSQL database."""
    first = ServerProcess(database_url=postgres_database, data_dir=tmp_path / "a")
    second = ServerProcess(database_url=postgres_database, data_dir=tmp_path / "b")
    first.start()
    second.start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


@pytest.mark.postgres
def test_two_servers_on_one_postgres_behave_as_one(two_servers: tuple[ServerProcess, ServerProcess]) -> None:
    first, second = two_servers
    project = _project(first.database_url)
    with (
        SSEReader(second.url, project.rw_key) as on_second,
        SSEReader(first.url, project.rw_key) as on_first,
        first.client(project) as via_first,
        second.client(project) as via_second,
    ):
        etag = via_second.get("/v1/variables/").headers["etag"]  # the second server's snapshot is built
        via_first.post("/v1/variables/", json={"name": "shared"}).raise_for_status()
        assert on_second.next_data()[1] == {"event": "created", "name": "shared", "entity": "variable"}
        assert on_first.next_data()[1]["event"] == "created"
        # The second server's snapshot was invalidated by the notification: it serves the change.
        fresh = via_second.get("/v1/variables/", headers={"If-None-Match": etag})
        assert fresh.status_code == 200 and "shared" in fresh.json()["variables"]
        # And the other way round.
        via_second.put("/v1/variables/shared/", json={"name": "shared", "description": "2"}).raise_for_status()
        assert on_first.next_data()[1] == {"event": "updated", "name": "shared", "entity": "variable"}
        assert on_second.next_data()[1]["event"] == "updated"
        assert via_first.get("/v1/variables/").json()["variables"]["shared"]["description"] == "2"
        # Revoking a key through one server is honoured by the other as soon as the notification arrives.
        keys = via_first.get("/v1/api-keys/")
        if keys.status_code == 200:
            ro = next(k for k in keys.json() if k["scopes"] == ["read"])
            assert via_second.get("/v1/variables/", headers=project.headers(project.ro_key)).status_code == 200
            via_first.delete(f"/v1/api-keys/{ro['id']}/").raise_for_status()
            ro_headers = project.headers(project.ro_key)
            wait_for(lambda: via_second.get("/v1/variables/", headers=ro_headers).status_code == 401, timeout=3)
