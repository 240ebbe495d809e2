"""A change event must never be followed by a fetch answered from the snapshot before that change.

The race (seen as a 304 with the old ETag right after an SSE event): a `get` in a worker thread takes the
queued changes and rebuilds; until it stores the new snapshot, `cached` (the event loop's no-I/O path) must
not hand out the old one as current. Reproduced deterministically by holding the rebuild inside its read
transaction (threads and events, no sleeps), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from setpoint._server.services import editing
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.snapshot import Snapshot, SnapshotCache
from setpoint._server.storage import ReadTx, Storage
from tests.server.conftest import BACKENDS
from tests.server.scale_support import fill_project
from tests.server.support import make_project

pytestmark = pytest.mark.parametrize("storage", BACKENDS, indirect=True)

WAIT = 30  # seconds; only reached when the code under test is broken (a deadlock), never on the normal path


class Gate:
    """Holds the next read transaction of a storage at its start until released."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        real_read = storage.read

        @contextmanager
        def gated_read() -> Iterator[ReadTx]:
            if self.armed:
                self.armed = False
                self.entered.set()
                assert self.release.wait(WAIT)
            with real_read() as tx:
                yield tx

        def read() -> AbstractContextManager[ReadTx]:
            return gated_read()

        monkeypatch.setattr(storage, "read", read)


def _setup(storage: Storage) -> tuple[ServiceContext, SnapshotCache, int]:
    cache = SnapshotCache(storage)
    sink = ChangeSink(origin="test")
    # As the server wires it: a committed change is marked, then published (here: nothing to publish to).
    sink.subscribe(lambda change: cache.mark(change.project_id, change.entity, change.name))
    ctx = ServiceContext(storage=storage, sink=sink)
    project = make_project(ctx)
    fill_project(storage, project.id, 3)
    return ctx, cache, project.id


def _write(ctx: ServiceContext, project_id: int, value: int) -> None:
    editing.create_version(ctx, project_id, "var_00001", f'{{"n": {value}}}', "tests", label="prod")


def _get_in_thread(cache: SnapshotCache, project_id: int) -> tuple[threading.Thread, list[Snapshot]]:
    result: list[Snapshot] = []
    thread = threading.Thread(target=lambda: result.append(cache.get(project_id)))
    thread.start()
    return thread, result


def test_no_stale_snapshot_while_a_change_is_being_applied(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, cache, project_id = _setup(storage)
    before = cache.get(project_id)
    gate = Gate(storage, monkeypatch)
    _write(ctx, project_id, 1)  # committed and marked: from here on the old snapshot is stale
    assert cache.cached(project_id) is None

    gate.armed = True
    builder, built = _get_in_thread(cache, project_id)  # takes the queued change and rebuilds...
    assert gate.entered.wait(WAIT)  # ...and is held inside its read transaction
    try:
        # What a fetch on the event loop does meanwhile: it must not be told the old snapshot is current.
        assert cache.cached(project_id) is None
        waiter, waited = _get_in_thread(cache, project_id)  # a fetch in another worker waits for the rebuild
    finally:
        gate.release.set()
    builder.join(WAIT)
    waiter.join(WAIT)
    assert not builder.is_alive() and not waiter.is_alive()
    after = cache.cached(project_id)
    assert after is not None
    assert after.native.etag != before.native.etag
    assert built[0].native.etag == waited[0].native.etag == after.native.etag
    assert b'"{\\"n\\": 1}"' in after.native.body


def test_a_change_marked_during_a_rebuild_is_applied_by_the_next_get(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, cache, project_id = _setup(storage)
    cache.get(project_id)
    gate = Gate(storage, monkeypatch)
    _write(ctx, project_id, 1)
    gate.armed = True
    builder, _ = _get_in_thread(cache, project_id)
    assert gate.entered.wait(WAIT)
    try:
        _write(ctx, project_id, 2)  # committed and marked while the rebuild of the first change runs
    finally:
        gate.release.set()
    builder.join(WAIT)
    assert not builder.is_alive()
    assert cache.cached(project_id) is None  # the second change is still queued
    assert b'"{\\"n\\": 2}"' in cache.get(project_id).native.body
