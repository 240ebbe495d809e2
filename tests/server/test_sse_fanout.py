"""SSE fan-out inside one server process (real uvicorn over HTTP, run in this process to read its hub): one event
reaches every open stream of its project once, in the format the Logfire SDK parses, and no stream of another
project; a stream whose client goes away is unsubscribed; stopping the server ends the streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from setpoint._server.app import create_app
from setpoint._server.services import editing
from setpoint._server.settings import Settings
from setpoint._server.state import ServerState
from setpoint._server.storage import Storage
from tests.server.conftest import BACKENDS
from tests.server.scale_support import fill_project
from tests.server.support import Project, make_project
from tests.server.test_snapshot import serve_in_thread

pytestmark = pytest.mark.parametrize("storage", BACKENDS, indirect=True)

WAIT = 20.0  # seconds; reached only when something is broken

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
def served(storage: Storage, tmp_path: Path) -> Iterator[tuple[int, ServerState]]:
    app = create_app(Settings(data_dir=tmp_path), storage)
    with serve_in_thread(app) as url:
        yield int(url.rsplit(":", 1)[1]), app.state.setpoint


def _project(state: ServerState) -> Project:
    project = make_project(state.ctx)
    fill_project(state.storage, project.id, 3)
    return project


async def _open(port: int, project: Project) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /v1/variable-updates/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: bearer {project.ro_key}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b": connected\n\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
    return reader, writer


async def _next_data(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next ``data:`` line's JSON (keep-alive comments and chunk sizes skipped)."""
    await asyncio.wait_for(reader.readuntil(b"data: "), WAIT)
    data: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readuntil(b"\n\n"), WAIT))
    return data


def _write(state: ServerState, project: Project, name: str, value: int) -> None:
    editing.create_version(state.ctx, project.id, name, f'{{"n": {value}}}', "tests", label="prod")


async def _until(condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def test_an_event_reaches_every_stream_of_its_project_once(served: tuple[int, ServerState]) -> None:
    port, state = served
    mine, theirs = _project(state), _project(state)

    async def scenario() -> None:
        streams = [await _open(port, mine) for _ in range(40)]
        others = [await _open(port, theirs) for _ in range(5)]
        await _until(lambda: state.hub.subscriber_count(mine.id) == 40)
        await asyncio.to_thread(_write, state, mine, "var_00001", 1)
        first = await asyncio.gather(*(_next_data(reader) for reader, _ in streams))
        assert first == [{"event": "updated", "name": "var_00001", "entity": "variable"}] * 40
        await asyncio.to_thread(_write, state, mine, "var_00002", 2)
        await asyncio.to_thread(_write, state, theirs, "var_00000", 3)
        second = await asyncio.gather(*(_next_data(reader) for reader, _ in streams))
        assert {d["name"] for d in second} == {"var_00002"}  # the first event was not delivered twice
        # The other project's streams saw neither of this project's events: their first is their own change.
        assert [await _next_data(reader) for reader, _ in others] == [
            {"event": "updated", "name": "var_00000", "entity": "variable"}
        ] * 5
        for _, writer in streams + others:
            writer.close()

    asyncio.run(scenario())


def test_a_stream_whose_client_leaves_is_unsubscribed(served: tuple[int, ServerState]) -> None:
    port, state = served
    project = _project(state)

    async def scenario() -> None:
        streams = [await _open(port, project) for _ in range(3)]
        await _until(lambda: state.hub.subscriber_count(project.id) == 3)
        for _, writer in streams[:2]:
            writer.close()
        await _until(lambda: state.hub.subscriber_count(project.id) == 1)
        await asyncio.to_thread(_write, state, project, "var_00001", 1)  # the one left still gets events
        assert (await _next_data(streams[2][0]))["name"] == "var_00001"
        streams[2][1].close()
        await _until(lambda: state.hub.subscriber_count() == 0)

    asyncio.run(scenario())


def test_closing_the_hub_ends_every_stream(served: tuple[int, ServerState]) -> None:
    port, state = served
    project = _project(state)

    async def scenario() -> None:
        streams = [await _open(port, project) for _ in range(3)]
        await _until(lambda: state.hub.subscriber_count(project.id) == 3)
        state.hub.close()  # what a server shutdown does first
        for reader, writer in streams:
            # The chunked body's last chunk: the response is complete (the client's stream ends, no reset).
            await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), WAIT)
            writer.close()
        await _until(lambda: state.hub.subscriber_count() == 0)

    asyncio.run(scenario())
