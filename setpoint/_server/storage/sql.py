"""The SQL implementation of the storage interface (SQLAlchemy 2 Core) for SQLite and PostgreSQL.

``sql_read.py`` and ``sql_write.py`` hold the transactions, ``sql_rows.py`` the row conversions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from setpoint._server.storage.base import ReadTx, Storage, WriteTx
from setpoint._server.storage.login_failures import LoginFailureStore
from setpoint._server.storage.sql_read import SqlReadTx
from setpoint._server.storage.sql_write import NOTIFY_CHANNEL, SqlWriteTx
from setpoint._server.storage.usage import UsageStore
from setpoint._server.storage.webhooks import WebhookStore

__all__ = ["NOTIFY_CHANNEL", "SqlReadTx", "SqlStorage", "SqlWriteTx"]


class SqlStorage(Storage):
    """Storage over a SQLAlchemy engine; ``SqliteStorage`` and ``PostgresStorage`` set the engine up."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.url = engine.url.render_as_string(hide_password=True)
        self.usage = UsageStore(engine)
        self.login_failures = LoginFailureStore(engine)
        self.webhooks = WebhookStore(engine)
        self._on_dispose: list[Callable[[], None]] = []

    def on_dispose(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the storage is disposed (e.g. to release a file lock)."""
        self._on_dispose.append(callback)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=write)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        """A read transaction."""
        with self._transaction(write=False) as conn:
            yield SqlReadTx(conn, self.dialect)

    @contextmanager
    def write(self) -> Iterator[WriteTx]:
        """A write transaction, committed on normal exit (then its :meth:`WriteTx.after_commit` callbacks run)."""
        with self._transaction(write=True) as conn:
            tx = SqlWriteTx(conn, self.dialect)
            yield tx
        tx.run_after_commit()

    def migrate(self) -> None:
        """Run the Alembic migrations up to head."""
        from setpoint._server.storage.migrate import upgrade

        upgrade(self.engine)

    def is_migrated(self) -> bool:
        """Whether the schema is at head."""
        from setpoint._server.storage.migrate import is_at_head

        return is_at_head(self.engine)

    def ping(self) -> None:
        """Raise if the database cannot answer ``SELECT 1``."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        """Close all pooled connections (and release what :meth:`on_dispose` registered)."""
        self.engine.dispose()
        callbacks, self._on_dispose = self._on_dispose, []
        for callback in callbacks:
            callback()
