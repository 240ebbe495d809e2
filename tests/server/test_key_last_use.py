"""Each API key's ``last_used_at``: written at most once a minute per key (off the request path), shown by
``GET /v1/api-keys/`` and ``setpoint keys list``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from setpoint._server.app import create_app
from setpoint._server.auth import KeyCache
from setpoint._server.security import hash_token
from setpoint._server.services import keys
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.settings import Settings
from setpoint._server.storage import Storage
from setpoint._server.storage.sql import SqlStorage
from tests.server.conftest import BACKENDS
from tests.server.support import Project, ServerProcess, make_project
from tests.server.test_snapshot import serve_in_thread


class KeyUseWrites:
    """Counts ``UPDATE api_keys`` statements (any thread) and request-thread statements."""

    def __init__(self, engine: sa.Engine) -> None:
        self.key_updates = 0
        self.request_statements = 0
        sa.event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            self.key_updates += 1
        if not threading.current_thread().name.startswith("setpoint-"):
            self.request_statements += 1

    def wait_for_updates(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.key_updates < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.key_updates == count


def _last_used(storage: Storage, token: str) -> datetime | None:
    with storage.read() as tx:
        key = tx.find_api_key(hash_token(token))
    assert key is not None
    return key.last_used_at


@pytest.fixture
def app_server(storage: Storage, tmp_path: Path) -> Iterator[tuple[str, Storage, KeyUseWrites]]:
    """The app served by uvicorn in this process, on the backend of ``storage``."""
    assert isinstance(storage, SqlStorage)
    counter = KeyUseWrites(storage.engine)
    with serve_in_thread(create_app(Settings(data_dir=tmp_path), storage)) as url:
        yield url, storage, counter


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
def test_a_hundred_fetches_write_the_last_use_once(app_server: tuple[str, Storage, KeyUseWrites]) -> None:
    url, storage, counter = app_server
    project = make_project(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")))
    assert _last_used(storage, project.ro_key) is None
    with httpx.Client(base_url=url, headers=project.headers(project.ro_key)) as client:
        assert client.get("/v1/variables/").status_code == 200  # first use: recorded in the background
        counter.wait_for_updates(1)
        first = _last_used(storage, project.ro_key)
        assert first is not None and abs(datetime.now(UTC) - first) < timedelta(minutes=1)
        before = counter.request_statements
        for _ in range(100):
            assert client.get("/v1/variables/").status_code == 200
        assert counter.request_statements == before  # the fetches themselves touch no database
    time.sleep(0.3)
    assert counter.key_updates == 1
    assert _last_used(storage, project.ro_key) == first


def test_the_next_use_after_the_interval_is_written_again(storage: Storage) -> None:
    created = keys.create_key(
        ServiceContext(storage=storage, sink=ChangeSink(origin="tests")), "uses", frozenset({"read"}), "tests"
    )
    assert isinstance(storage, SqlStorage)
    counter = KeyUseWrites(storage.engine)
    cache = KeyCache(storage, use_interval=0.3)
    token_hash = hash_token(created.token)
    principal = cache.load(token_hash)
    assert principal is not None
    for _ in range(5):
        assert cache.cached(token_hash) == principal
    cache.close()  # waits for the pending write
    assert counter.key_updates == 1
    first = _last_used(storage, created.token)
    time.sleep(0.35)
    cache.used(principal)
    cache.close()
    assert counter.key_updates == 2
    second = _last_used(storage, created.token)
    assert first is not None and second is not None and second > first


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")
def test_api_and_cli_show_the_last_use(server: ServerProcess, project: Project, server_ctx: ServiceContext) -> None:
    unused = keys.create_key(server_ctx, project.name, frozenset({"read"}), "tests", name="unused")
    with server.client(project, project.ro_key) as reader:
        assert reader.get("/v1/variables/").status_code == 200
    deadline = time.monotonic() + 5
    with server.client(project) as client:
        while True:
            listed = {k["prefix"]: k for k in client.get("/v1/api-keys/").json()}
            if listed[project.ro_key[:10]]["last_used_at"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    used_at = datetime.fromisoformat(listed[project.ro_key[:10]]["last_used_at"])
    assert abs(datetime.now(UTC) - used_at) < timedelta(minutes=1)
    assert listed[unused.key.prefix]["last_used_at"] is None
    lines = {
        line.split("\t")[1].rstrip("…"): line
        for line in server.keys_command("list", "--project", project.name).splitlines()
    }
    assert f"last used {used_at.strftime('%Y-%m-%d %H:%M:%S')} UTC" in lines[project.ro_key[:10]]
    assert "last used never" in lines[unused.key.prefix]
