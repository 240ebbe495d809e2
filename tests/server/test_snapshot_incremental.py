"""The served snapshot is updated per change: a write re-serializes the variable it changed (a segment write:
the segment and the variables naming it), the same number at 10 and 1,000 variables, and the result is byte
for byte what a full rebuild gives. Compressed bodies (gzip, brotli) are built once per snapshot; fetches and
304s stay free of database work. Real server (in this process, to read its counters) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import httpx
import pytest

from setpoint._server.app import create_app
from setpoint._server.settings import Settings
from setpoint._server.snapshot import SnapshotCache
from setpoint._server.state import ServerState
from setpoint._server.storage import Storage
from setpoint._server.storage.sql import SqlStorage
from tests.server.conftest import BACKENDS
from tests.server.scale_support import fill_project
from tests.server.support import Project, make_project
from tests.server.test_snapshot import QueryCounter, serve_in_thread

pytestmark = pytest.mark.parametrize("storage", BACKENDS, indirect=True)

Served = tuple[str, ServerState, QueryCounter]


@pytest.fixture
def served(storage: Storage, tmp_path: Any) -> Iterator[Served]:
    assert isinstance(storage, SqlStorage)
    app = create_app(Settings(data_dir=tmp_path), storage)
    counter = QueryCounter(storage.engine)
    with serve_in_thread(app) as url:
        state: ServerState = app.state.setpoint
        if state.watcher is not None:
            # SQLite's audit poller also marks this process's own writes (again: a set, so usually coalesced);
            # stopped here so that the counts below do not depend on when it polls.
            state.watcher.stop()
        yield url, state, counter


def _project(state: ServerState, size: int) -> Project:
    project = make_project(state.ctx)
    fill_project(state.storage, project.id, size)
    return project


def _full_rebuild(state: ServerState, project_id: int) -> tuple[bytes, bytes]:
    snapshot = SnapshotCache(state.storage).get(project_id)
    return snapshot.native.body, snapshot.logfire.body


def _rule(attribute: str, value: str) -> dict[str, Any]:
    return {"clauses": [{"attribute": attribute, "op": "in", "values": [value]}]}


def test_a_change_reserializes_only_what_it_touched(served: Served) -> None:
    url, state, _ = served
    serialized: dict[int, list[tuple[str, int, int]]] = {}
    for size in (10, 1000):
        project = _project(state, size)
        with httpx.Client(base_url=url, headers=project.headers()) as client:
            client.get("/v1/variables/").raise_for_status()  # the full load
            steps: list[tuple[str, int, int]] = []
            for kind, response in _changes_lazily(client):
                before = (state.snapshots.counters.variables, state.snapshots.counters.full_loads)
                response().raise_for_status()
                native = client.get("/v1/variables/")
                logfire = client.get("/v1/variables/", headers={"User-Agent": "logfire/5.4.0"})
                after = (state.snapshots.counters.variables, state.snapshots.counters.full_loads)
                steps.append((kind, after[0] - before[0], after[1] - before[1]))
            assert (native.content, logfire.content) == _full_rebuild(state, project.id)
        serialized[size] = steps
    assert serialized[10] == serialized[1000]
    by_kind = {kind: (count, loads) for kind, count, loads in serialized[1000]}
    assert by_kind["version"] == by_kind["targeting"] == by_kind["details"] == (1, 0)
    assert by_kind["rename"] == (1, 0)  # the old name is dropped, the new one read
    assert by_kind["delete"] == (0, 0)


def _changes_lazily(client: httpx.Client) -> list[tuple[str, Callable[[], httpx.Response]]]:
    """One change of each kind of variable write, made over HTTP when called."""
    return [
        ("version", lambda: client.post("/v1/variables/var_00005/versions/", json={"value": {"n": -5}})),
        ("targeting", lambda: client.put("/v1/variables/var_00003/targeting/", json={"rollout": {"labels": {}}})),
        ("details", lambda: client.patch("/v1/variables/var_00004/", json={"description": "four"})),
        ("rename", lambda: client.post("/v1/variables/var_00006/rename/", json={"new_name": "var_six"})),
        ("delete", lambda: client.delete("/v1/variables/var_00008/")),
    ]


def test_a_segment_change_reserializes_the_segment_and_the_variables_naming_it(served: Served) -> None:
    url, state, _ = served
    project = _project(state, 200)  # every tenth variable names segment beta: 20 of them
    with httpx.Client(base_url=url, headers=project.headers()) as client:
        client.get("/v1/variables/").raise_for_status()
        counters = state.snapshots.counters
        before = (counters.variables, counters.segments, counters.full_loads)
        client.put("/v1/segments/beta/", json={"name": "Beta", "rules": [_rule("plan", "pro")]}).raise_for_status()
        logfire = client.get("/v1/variables/", headers={"User-Agent": "logfire/5.4.0"})
        after = (counters.variables, counters.segments, counters.full_loads)
        assert after == (before[0] + 20, before[1] + 1, before[2])
        # The Logfire form now carries the segment's rule as a plain condition.
        served_override = json.loads(logfire.content)["variables"]["var_00010"]["overrides"][0]
        assert served_override["conditions"] == [{"kind": "value-is-in", "attribute": "plan", "values": ["pro"]}]
        client.put("/v1/segments/gamma/", json={"name": "G", "included": ["x"]}).raise_for_status()  # named by none
        client.get("/v1/variables/").raise_for_status()
        assert (counters.variables, counters.segments) == (before[0] + 20, before[1] + 2)
        assert client.get("/v1/variables/").content == _full_rebuild(state, project.id)[0]


def test_compressed_bodies_are_built_once_and_fetches_stay_free_of_database_work(served: Served) -> None:
    url, state, counter = served
    project = _project(state, 100)
    with httpx.Client(base_url=url, headers=project.headers()) as client:
        plain = client.get("/v1/variables/", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        etag = plain.headers["etag"]
        queries = counter.count
        snapshot = state.snapshots.cached(project.id)
        assert snapshot is not None and snapshot.native.encoded("gzip") is None
        raw: dict[str, bytes] = {}
        for encoding in ("gzip", "br"):
            for _ in range(3):
                with client.stream("GET", "/v1/variables/", headers={"Accept-Encoding": encoding}) as response:
                    assert response.headers["content-encoding"] == encoding
                    assert response.headers["etag"] == f'{etag[:-1]}-{encoding}"'
                    assert "Accept-Encoding" in response.headers["vary"]
                    raw[encoding] = b"".join(response.iter_raw())
            built = snapshot.native.encoded(encoding)
            assert built is not None and built is snapshot.native.encode(encoding)  # the same object: built once
        assert gzip.decompress(raw["gzip"]) == plain.content
        assert brotli.decompress(raw["br"]) == plain.content
        assert len(raw["br"]) < len(plain.content) / 5
        # brotli preferred, q=0 refused, a 304 for the ETag of any encoding
        assert client.get("/v1/variables/", headers={"Accept-Encoding": "gzip, br"}).headers["content-encoding"] == "br"
        refused = client.get("/v1/variables/", headers={"Accept-Encoding": "br;q=0, gzip"})
        assert refused.headers["content-encoding"] == "gzip"
        for sent in (etag, f'{etag[:-1]}-gzip"', f'{etag[:-1]}-br"'):
            assert client.get("/v1/variables/", headers={"If-None-Match": sent}).status_code == 304
        assert counter.count == queries
        # A small body is not compressed.
        other = make_project(state.ctx)
        small = client.get("/v1/variables/", headers={**other.headers(), "Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers and small.json() == {"variables": {}}
