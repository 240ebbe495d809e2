"""``setpoint serve --workers N``: several processes on one port (SQLite or PostgreSQL); a change made through
any of them reaches the SSE clients and the snapshots of all of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from setpoint._server.services.context import ServiceContext
from tests.server.conftest import BACKENDS
from tests.server.sse_support import SSEReader
from tests.server.support import ServerProcess, make_project

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def workers(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("workers")
    url = "" if database_url.startswith("sqlite") else database_url
    proc = ServerProcess(database_url=url, data_dir=data_dir, extra_args=["--workers", "2", "--backlog", "8192"])
    proc.start(timeout=90)
    try:
        yield proc
    finally:
        output = proc.stop()
        assert "Setpoint stopped." in output


@pytest.fixture(scope="module")
def workers_ctx(workers: ServerProcess, database_url: str) -> Iterator[ServiceContext]:
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.storage import open_storage

    url = database_url if workers.database_url else f"sqlite:///{Path(workers.data_dir) / 'setpoint.db'}"
    store = open_storage(url)
    try:
        yield ServiceContext(storage=store, sink=ChangeSink(origin="tests"))
    finally:
        store.dispose()


def test_a_change_reaches_the_clients_of_every_worker(workers: ServerProcess, workers_ctx: ServiceContext) -> None:
    project = make_project(workers_ctx)
    assert "2 worker processes" in workers.log()
    with ExitStack() as stack:
        readers: list[SSEReader] = []
        while len({r.process for r in readers}) < 2:  # the kernel hands connections to either process
            assert len(readers) < 60, "every SSE connection went to the same worker"
            readers.append(stack.enter_context(SSEReader(workers.url, project.rw_key)))
        for i in range(3):
            # A fresh connection per write: any worker may take it.
            response = httpx.post(f"{workers.url}/v1/variables/", json={"name": f"v{i}"}, headers=project.headers())
            response.raise_for_status()
            for reader in readers:
                _, event = reader.next_data(timeout=10)
                assert event == {"event": "created", "name": f"v{i}", "entity": "variable"}, reader.process
        # Every worker's snapshot serves the change (fresh connections land on either).
        for _ in range(20):
            served = httpx.get(f"{workers.url}/v1/variables/", headers=project.headers()).json()
            assert set(served["variables"]) == {"v0", "v1", "v2"}
