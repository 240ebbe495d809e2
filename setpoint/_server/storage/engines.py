"""Open a :class:`~setpoint._server.storage.base.Storage` from a database URL."""

from __future__ import annotations

import os
import sqlite3
import sys
import weakref
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from setpoint._server.storage.base import DatabaseInUseError
from setpoint._server.storage.sql import SqlStorage

SQLITE_BUSY_TIMEOUT_S = 30
SQLITE_SYNCHRONOUS: Literal["FULL", "NORMAL"] = "FULL"
"""FULL: every commit fsyncs the WAL before it returns, so an acknowledged write survives power loss
(NORMAL only survives a killed process). The latency cost is measured in BENCHMARKS.md."""


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other URLs and in-memory databases)."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        return None
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def lock_path(database: Path) -> Path:
    """The file every Setpoint process using ``database`` holds a shared lock on (restore needs it exclusively)."""
    return database.with_name(database.name + ".lock")


class InstanceLock:
    """An advisory ``flock`` on :func:`lock_path`: shared while a process uses the database, exclusive while
    ``setpoint restore`` replaces it. SQLite's own locks are only held during transactions, so they cannot
    tell an idle running server apart from a stopped one."""

    def __init__(self, database: Path, *, exclusive: bool) -> None:
        self.path = lock_path(database)
        # A bare descriptor, not a file object: a storage that is never disposed must not warn when collected.
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if sys.platform == "win32":  # pragma: no cover - no flock; restore cannot detect a running server there
            return
        import fcntl

        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise
        except OSError:  # pragma: no cover - a file system without flock: no detection, no refusal
            pass

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def in_use(database: Path) -> bool:
    """Whether a Setpoint process (a server, a command) has ``database`` open right now."""
    try:
        lock = InstanceLock(database, exclusive=True)
    except BlockingIOError:
        return True
    lock.release()
    return False


def normalize_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` to the psycopg 3 driver that Setpoint ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_url(data_dir: Path) -> str:
    """The URL of the default database file inside ``data_dir``."""
    return f"sqlite:///{(data_dir / 'setpoint.db').resolve()}"


def sqlite_engine(url: str, synchronous: str = SQLITE_SYNCHRONOUS) -> Engine:
    engine = sa.create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, pool_size=10
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN IMMEDIATE below is what starts one.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write takes the database write lock up front: no lock upgrade deadlocks, and version
        # numbers are allocated by one writer at a time.
        immediate = conn.get_execution_options().get("setpoint_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_storage(url: str, *, sqlite_synchronous: str = SQLITE_SYNCHRONOUS) -> SqlStorage:
    """Storage for a ``sqlite:///path`` or ``postgresql://...`` URL (the file's directory is created).

    A SQLite file is marked in use (a shared :class:`InstanceLock`) until :meth:`SqlStorage.dispose`.
    ``sqlite_synchronous`` exists for the durability benchmark; keep the default.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        storage = SqlStorage(sqlite_engine(url, sqlite_synchronous))
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                lock = InstanceLock(path, exclusive=False)
                storage.on_dispose(weakref.finalize(storage, lock.release))  # also released if never disposed
            except PermissionError:
                pass  # a read-only directory: nothing to detect a running instance with, nothing to restore into
            except BlockingIOError:
                storage.dispose()
                message = f"{path} is being restored (setpoint restore); try again when it is done"
                raise DatabaseInUseError(message) from None
        return storage
    if url.startswith("postgresql"):
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        return SqlStorage(engine)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db")
