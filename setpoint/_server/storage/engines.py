"""Open a :class:`~setpoint._server.storage.base.Storage` from a database URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from setpoint._server.storage.sql import SqlStorage

SQLITE_BUSY_TIMEOUT_S = 30


def normalize_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` to the psycopg 3 driver that Setpoint ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_url(data_dir: Path) -> str:
    """The URL of the default database file inside ``data_dir``."""
    return f"sqlite:///{(data_dir / 'setpoint.db').resolve()}"


def _sqlite_engine(url: str) -> Engine:
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
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write takes the database write lock up front: no lock upgrade deadlocks, and version
        # numbers are allocated by one writer at a time.
        immediate = conn.get_execution_options().get("setpoint_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_storage(url: str) -> SqlStorage:
    """Storage for a ``sqlite:///path`` or ``postgresql://...`` URL (the file's directory is created)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        parsed = sa.engine.make_url(url)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return SqlStorage(_sqlite_engine(url))
    if url.startswith("postgresql"):
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        return SqlStorage(engine)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db")
