"""Run ordinary service functions inside a transaction that is already open.

Scheduled work must commit together with the bookkeeping of its schedule (claimed, done or failed), so that a
crash can never apply a change twice. The service functions (``editing.set_label``, a change request's apply,
...) open their own transaction with ``ctx.storage.write()``; :func:`in_transaction` gives them a context
whose storage hands out a savepoint of the open transaction instead (so each of their "transactions" is still
all or nothing, and what they commit is committed with the outer transaction), and whose change sink holds back
the "applied" signal until the outer transaction has committed (:meth:`DeferredSink.flush`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from setpoint._server.services.changes import Change, ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import ReadTx, Storage, WriteTx
from setpoint._server.storage.sql_read import SqlReadTx
from setpoint._server.storage.usage import UsageStore


class TxStorage(Storage):
    """A storage whose reads and writes are all the one open transaction ``tx`` (committed by its owner)."""

    def __init__(self, outer: Storage, tx: WriteTx) -> None:
        self._outer = outer
        self._tx = tx
        self.dialect = outer.dialect
        self.url = outer.url
        self.usage: UsageStore = outer.usage

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        """The open transaction."""
        yield self._tx

    @contextmanager
    def write(self) -> Iterator[WriteTx]:
        """A savepoint of the open transaction: released when the block ends, rolled back on an exception, so a
        service's "transaction" keeps its meaning (all or nothing) inside the outer one."""
        assert isinstance(self._tx, SqlReadTx)
        with self._tx.conn.begin_nested():
            yield self._tx

    def migrate(self) -> None:
        """Not available inside a transaction."""
        raise RuntimeError("cannot migrate inside a transaction")

    def is_migrated(self) -> bool:
        """Whether the schema is at the newest migration."""
        return self._outer.is_migrated()

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        self._outer.ping()

    def dispose(self) -> None:
        """Not available inside a transaction."""
        raise RuntimeError("cannot dispose of the storage inside a transaction")


class DeferredSink(ChangeSink):
    """A change sink that notifies other processes inside the transaction (as usual) but tells this process's
    listeners only when :meth:`flush` is called after the commit."""

    def __init__(self, target: ChangeSink) -> None:
        super().__init__(target.origin)
        self._target = target
        self._held: list[Change] = []

    def applied(self, change: Change) -> None:
        """Hold the change until :meth:`flush`."""
        self._held.append(change)

    def discard(self) -> None:
        """Forget the held changes (their transaction or savepoint was rolled back)."""
        self._held.clear()

    def flush(self) -> None:
        """Deliver the held changes to the real sink (call after the commit)."""
        held, self._held = self._held, []
        for change in held:
            self._target.applied(change)


@contextmanager
def in_transaction(ctx: ServiceContext) -> Iterator[tuple[WriteTx, ServiceContext, DeferredSink]]:
    """Open one write transaction and a context whose service calls all run in it; the held changes are
    delivered after the commit (and dropped on a rollback)."""
    with ctx.storage.write() as tx:
        sink = DeferredSink(ctx.sink)
        yield tx, replace(ctx, storage=TxStorage(ctx.storage, tx), sink=sink), sink
    sink.flush()
