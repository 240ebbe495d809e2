"""Revoking an API key ends the SSE streams it opened (within about 2 s), in whichever process it is revoked:
the server itself (API), or another process (``setpoint keys revoke``: NOTIFY on PostgreSQL, the audit
poller on SQLite). Reconnecting with the key is then refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from setpoint._server.events import StreamItem
from setpoint._server.security import hash_token
from setpoint._server.settings import Settings
from setpoint._server.state import ServerState
from setpoint._server.storage import open_storage
from tests.server.conftest import BACKENDS
from tests.server.sse_support import SSEReader
from tests.server.support import Project, ServerProcess, make_project

on_both_backends = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

ENDS_WITHIN = 2.5
"""Seconds from the revocation returning to the stream ending ("about 2 seconds")."""


def _key_id(server: ServerProcess, project: Project, token: str) -> int:
    with server.client(project) as client:
        listed = client.get("/v1/api-keys/").json()
    return int(next(k["id"] for k in listed if token.startswith(k["prefix"])))


def _stream_status(server: ServerProcess, token: str) -> int:
    headers = {"Authorization": f"bearer {token}"}
    with httpx.stream("GET", f"{server.url}/v1/variable-updates/", headers=headers, timeout=10) as response:
        return response.status_code


@on_both_backends
@pytest.mark.parametrize("how", ["api", "cli"])
def test_revoking_a_key_ends_its_open_streams(server: ServerProcess, project: Project, how: str) -> None:
    key_id = _key_id(server, project, project.ro_key)
    with SSEReader(server.url, project.ro_key) as revoked, SSEReader(server.url, project.rw_key) as kept:
        assert revoked.status_code == 200 and kept.status_code == 200
        if how == "api":
            with server.client(project) as client:
                client.delete(f"/v1/api-keys/{key_id}/").raise_for_status()
        else:
            server.keys_command("revoke", "--project", project.name, "--id", str(key_id))
        started = time.monotonic()
        assert revoked.closed.wait(ENDS_WITHIN), f"the stream of the revoked key is still open ({how})"
        assert time.monotonic() - started < ENDS_WITHIN
        assert not kept.closed.is_set(), "a stream of another key ended too"
        assert _stream_status(server, project.ro_key) == 401
        # The other key's stream still delivers events.
        with server.client(project) as client:
            client.post("/v1/variables/", json={"name": f"after_{how}"}).raise_for_status()
        assert kept.next_data()[1]["name"] == f"after_{how}"


@on_both_backends
def test_several_streams_of_one_key_all_end(server: ServerProcess, project: Project) -> None:
    key_id = _key_id(server, project, project.ro_key)
    with SSEReader(server.url, project.ro_key) as first, SSEReader(server.url, project.ro_key) as second:
        with server.client(project) as client:
            client.delete(f"/v1/api-keys/{key_id}/").raise_for_status()
        assert first.closed.wait(ENDS_WITHIN) and second.closed.wait(ENDS_WITHIN)
    assert _stream_status(server, project.ro_key) == 401


def test_a_listener_reconnect_rechecks_the_keys_of_open_streams(tmp_path: Path) -> None:
    """Revocations notified while the PostgreSQL listener was disconnected are caught on reconnect."""
    storage = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    storage.migrate()
    state = ServerState.create(Settings(data_dir=tmp_path), storage)
    project = make_project(state.ctx)
    revoked_hash, kept_hash = hash_token(project.ro_key), hash_token(project.rw_key)

    async def scenario() -> tuple[StreamItem, bool]:
        state.hub.bind(asyncio.get_running_loop())
        revoked = state.hub.subscribe(project.id, 0, revoked_hash)
        kept = state.hub.subscribe(project.id, 0, kept_hash)
        with storage.write() as tx:  # revoked without any notification reaching this process
            key = tx.find_api_key(revoked_hash)
            assert key is not None
            tx.revoke_api_key(project.id, key.id)
        await asyncio.to_thread(state._on_reconnect)
        ended = await asyncio.wait_for(revoked.get(), 2)
        await asyncio.sleep(0.1)
        return ended, kept.empty()

    try:
        assert asyncio.run(scenario()) == (None, True)
    finally:
        state.keys.close()
        storage.dispose()
