"""Server-side evaluation (OFREP, ``/v1/resolve/``, the simulator) compiles per change: after a write, the next
evaluation compiles again only the variables the write touched (a segment write: the variables naming a
segment), the same number at 10 and 1,000 variables, and answers exactly as a config compiled in full.
Real server (in this process, to read its counters) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from setpoint._core.evaluator import compile_config
from setpoint._server.app import create_app
from setpoint._server.services import ofrep, simulate
from setpoint._server.settings import Settings
from setpoint._server.snapshot import SnapshotCache
from setpoint._server.state import ServerState
from setpoint._server.storage import Storage
from setpoint._server.storage.sql import SqlStorage
from tests.server.conftest import BACKENDS
from tests.server.scale_support import fill_project
from tests.server.support import Project, make_project
from tests.server.test_snapshot import serve_in_thread

pytestmark = pytest.mark.parametrize("storage", BACKENDS, indirect=True)

CONTEXT = {"context": {"targetingKey": "user-7", "plan": "pro"}}


@pytest.fixture
def served(storage: Storage, tmp_path: Any) -> Iterator[tuple[str, ServerState]]:
    assert isinstance(storage, SqlStorage)
    app = create_app(Settings(data_dir=tmp_path), storage)
    with serve_in_thread(app) as url:
        state: ServerState = app.state.setpoint
        if state.watcher is not None:
            state.watcher.stop()  # SQLite's audit poller would mark this process's writes a second time
        yield url, state


def _project(state: ServerState, size: int) -> Project:
    project = make_project(state.ctx)
    fill_project(state.storage, project.id, size)
    return project


def _compiles(state: ServerState) -> tuple[int, int]:
    counters = state.snapshots.counters
    return counters.compiled, counters.full_compiles


def _changes(client: httpx.Client) -> list[tuple[str, Callable[[], httpx.Response]]]:
    """One write of each kind, made over HTTP when called."""
    beta = {"name": "Beta", "rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}]}]}
    return [
        ("version", lambda: client.post("/v1/variables/var_00005/versions/", json={"value": {"n": -5}})),
        ("targeting", lambda: client.put("/v1/variables/var_00003/targeting/", json={"rollout": {"labels": {}}})),
        ("details", lambda: client.patch("/v1/variables/var_00004/", json={"description": "four"})),
        ("rename", lambda: client.post("/v1/variables/var_00006/rename/", json={"new_name": "var_six"})),
        ("delete", lambda: client.delete("/v1/variables/var_00008/")),
        ("segment", lambda: client.put("/v1/segments/beta/", json=beta)),
    ]


def _fresh_answers(state: ServerState, project_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The OFREP bulk answer and the resolutions from a config loaded and compiled in full."""
    compiled = compile_config(SnapshotCache(state.storage).get(project_id).config)
    context = ofrep.parse(json.dumps(CONTEXT).encode())
    resolutions = simulate.resolve(compiled, "user-7", {"plan": "pro"})
    return ofrep.evaluate_all(compiled, context), [r.to_json() for r in resolutions]


def test_an_evaluation_after_a_write_compiles_only_what_the_write_touched(served: tuple[str, ServerState]) -> None:
    url, state = served
    compiled: dict[int, list[tuple[str, int, int]]] = {}
    for size in (10, 1000):
        project = _project(state, size)
        with httpx.Client(base_url=url, headers=project.headers()) as client:
            before = _compiles(state)
            client.post("/ofrep/v1/evaluate/flags/var_00001", json=CONTEXT).raise_for_status()
            assert _compiles(state) == (before[0] + size, before[1] + 1)  # the first evaluation compiles it all
            steps: list[tuple[str, int, int]] = []
            for kind, write in _changes(client):
                write().raise_for_status()
                before = _compiles(state)
                assert client.post("/ofrep/v1/evaluate/flags/var_00002", json=CONTEXT).status_code == 200
                after = _compiles(state)
                steps.append((kind, after[0] - before[0], after[1] - before[1]))
                # Another evaluation of the same snapshot (another endpoint) compiles nothing.
                client.post("/v1/resolve/", json={"targeting_key": "u", "variables": ["var_00002"]}).raise_for_status()
                assert _compiles(state) == after
            bulk = client.post("/ofrep/v1/evaluate/flags", json=CONTEXT).json()
            resolved = client.post("/v1/resolve/", json={"targeting_key": "user-7", "attributes": {"plan": "pro"}})
            assert (bulk, resolved.json()["results"]) == _fresh_answers(state, project.id)
            # The changed segment's rule now matches plan=pro: var_00010 takes its override.
            if size > 10:
                assert client.post("/ofrep/v1/evaluate/flags/var_00010", json=CONTEXT).json()["reason"] == (
                    "TARGETING_MATCH"
                )
        compiled[size] = steps
    segment_users = {10: 1, 1000: 100}  # every tenth variable names segment beta
    for size, steps in compiled.items():
        assert steps == [
            ("version", 1, 0),
            ("targeting", 1, 0),
            ("details", 1, 0),
            ("rename", 1, 0),  # the new name compiled, the old one dropped
            ("delete", 0, 0),
            ("segment", segment_users[size], 0),
        ]


def test_writes_between_evaluations_are_compiled_together(served: tuple[str, ServerState]) -> None:
    url, state = served
    project = _project(state, 1000)
    with httpx.Client(base_url=url, headers=project.headers()) as client:
        client.post("/ofrep/v1/evaluate/flags", json=CONTEXT).raise_for_status()
        for number in (11, 12, 13):
            # A config fetch between writes builds each snapshot without compiling it.
            client.post(f"/v1/variables/var_{number:05d}/versions/", json={"value": {"n": 0}}).raise_for_status()
            client.get("/v1/variables/").raise_for_status()
        before = _compiles(state)
        client.post("/ofrep/v1/evaluate/flags/var_00012", json=CONTEXT).raise_for_status()
        assert _compiles(state) == (before[0] + 3, before[1])
        latest = {"targeting_key": "u", "variables": ["var_00012"], "label": "current"}  # label current: latest
        assert client.post("/v1/resolve/", json=latest).json()["results"][0]["value"] == {"n": 0}


def test_a_change_of_most_of_the_project_or_a_reload_compiles_in_full(served: tuple[str, ServerState]) -> None:
    url, state = served
    project = _project(state, 10)
    with httpx.Client(base_url=url, headers=project.headers()) as client:
        client.post("/ofrep/v1/evaluate/flags", json=CONTEXT).raise_for_status()
        for number in range(6):  # more than half of the 10 variables
            client.post(f"/v1/variables/var_{number:05d}/versions/", json={"value": {"n": 99}}).raise_for_status()
            client.get("/v1/variables/").raise_for_status()
        before = _compiles(state)
        bulk = client.post("/ofrep/v1/evaluate/flags", json=CONTEXT).json()
        assert _compiles(state) == (before[0] + 10, before[1] + 1)
        assert [flag["value"] for flag in bulk["flags"]] == [{"n": n} for n in range(10)]  # label prod: version 1
        latest = client.post("/v1/resolve/", json={"targeting_key": "u", "label": "current"}).json()["results"]
        assert [result["value"] for result in latest] == [{"n": 99}] * 6 + [{"n": n} for n in range(6, 10)]
        state.snapshots.invalidate(project.id)  # e.g. missed notifications: the project is loaded again
        client.post("/ofrep/v1/evaluate/flags", json=CONTEXT).raise_for_status()
        assert _compiles(state) == (before[0] + 20, before[1] + 2)
