"""Two ``setpoint serve`` processes on one PostgreSQL database (claims with ``FOR UPDATE SKIP LOCKED``), and
``setpoint serve --workers 2`` on SQLite (one writer at a time), run every due piece of scheduled work exactly
once: counted in the schedules' states and the audit."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from setpoint._server.services import audit
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import open_storage
from setpoint._server.storage import schedules as store
from tests.server.support import ServerProcess, make_project
from tests.server.test_schedules_api import _variable, _wait


@pytest.fixture
def database_url(postgres_database: str) -> str:
    """A fresh PostgreSQL database, migrated."""
    storage = open_storage(postgres_database)
    storage.migrate()
    storage.dispose()
    return postgres_database


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on that database."""
    servers = (
        ServerProcess(database_url=database_url, data_dir=tmp_path / "a"),
        ServerProcess(database_url=database_url, data_dir=tmp_path / "b"),
    )
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.postgres
def test_two_processes_on_one_postgresql_run_each_due_piece_of_work_exactly_once(
    two_servers: tuple[ServerProcess, ServerProcess], database_url: str
) -> None:
    storage = open_storage(database_url)
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    try:
        project = make_project(ctx, f"twice-{uuid.uuid4().hex[:8]}")
        names = [f"v{i}" for i in range(4)]
        for name in names:
            _variable(ctx, project, name)
        # progressive rollouts, one step a second, started through one process
        with httpx.Client(base_url=two_servers[0].url, headers=project.headers(), timeout=10) as client:
            for name in names[:2]:
                body = {"label": "canary", "start_weight": 0.1, "target_weight": 0.9, "steps": 4, "interval_seconds": 1}
                assert client.post(f"/v1/variables/{name}/progressive-rollout/", json=body).status_code == 201
        # and 60 plain schedules already due, written at once while both processes poll
        now = datetime.now(UTC)
        with storage.write() as tx:
            ids = [
                store.add_schedule(
                    tx,
                    project.id,
                    names[2 + i % 2],  # the rollouts of v0 and v1 would pause on a hand-set weight
                    "set_weights",
                    {"weights": {"stable": round(1 - i / 100, 2), "canary": round(i / 100, 2)}},
                    now - timedelta(seconds=1),
                    "tests",
                    now,
                ).id
                for i in range(60)
            ]

        def finished() -> bool:
            with storage.read() as rtx:
                pending = store.list_schedules(rtx, project.id, states=(store.PENDING,), limit=1)
                done = store.list_rollouts(rtx, project.id, states=(store.COMPLETED,))
            return not pending and len(done) == 2

        _wait(finished, timeout=120)
        with storage.read() as rtx:
            states = Counter(s.state for s in store.list_schedules(rtx, project.id, limit=1000))
        assert states == Counter({"done": 60 + 2 * 5})
        entries = audit.history(ctx, project.id, limit=2000)
        ran = Counter(e.after["id"] for e in entries if e.entity_type == "schedule" and e.action == "ran")
        assert sorted(ran) == sorted(ids) and set(ran.values()) == {1}
        steps = Counter(
            (e.entity_name, e.after["step"]) for e in entries if e.entity_type == "rollout" and e.action == "step"
        )
        assert sorted(steps) == sorted((name, step) for name in names[:2] for step in range(5))
        assert set(steps.values()) == {1}
        # each run is one variable change: 60 + 10 scheduled changes, no more
        scheduled_changes = [e for e in entries if e.entity_type == "variable" and "via schedule" in e.actor]
        assert len(scheduled_changes) == 70
    finally:
        storage.dispose()


def test_two_workers_on_sqlite_run_each_due_piece_of_work_exactly_once(tmp_path: Path) -> None:
    server = ServerProcess(database_url="", data_dir=tmp_path, extra_args=["--workers", "2"])
    server.start()
    storage = open_storage(f"sqlite:///{tmp_path / 'setpoint.db'}")
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    try:
        assert "2 worker processes" in server.log()
        project = make_project(ctx, f"twice-{uuid.uuid4().hex[:8]}")
        _variable(ctx, project, "v")
        now = datetime.now(UTC)
        with storage.write() as tx:
            ids = [
                store.add_schedule(
                    tx,
                    project.id,
                    "v",
                    "set_weights",
                    {"weights": {"stable": round(1 - i / 100, 2), "canary": round(i / 100, 2)}},
                    now - timedelta(seconds=1),
                    "tests",
                    now,
                ).id
                for i in range(40)
            ]

        def finished() -> bool:
            with storage.read() as rtx:
                return not store.list_schedules(rtx, project.id, states=(store.PENDING,), limit=1)

        _wait(finished, timeout=120)
        entries = audit.history(ctx, project.id, limit=2000)
        ran = Counter(e.after["id"] for e in entries if e.entity_type == "schedule" and e.action == "ran")
        assert sorted(ran) == sorted(ids) and set(ran.values()) == {1}
        assert len([e for e in entries if e.entity_type == "variable" and "via schedule" in e.actor]) == 40
    finally:
        storage.dispose()
        server.stop()
