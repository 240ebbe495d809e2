"""Online backup and offline restore of a SQLite instance (SQLite's backup API through the ``sqlite3`` module).

A backup is a self-contained SQLite file (rollback journal, no ``-wal`` beside it) copied from one read
snapshot, so it holds every transaction committed before the copy began and none half-way, while a
server keeps writing. PostgreSQL instances are backed up with ``pg_dump`` (README, "Backup and restore").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from setpoint._server.storage.base import DatabaseInUseError
from setpoint._server.storage.copy import TransferError, unknown_tables
from setpoint._server.storage.engines import SQLITE_BUSY_TIMEOUT_S, InstanceLock, sqlite_engine


@dataclass(frozen=True)
class BackupInfo:
    """A backup file's schema revision and size."""

    path: Path
    revision: str
    size: int


@dataclass(frozen=True)
class RestoreResult:
    """The revision the backup was at and the one the restored database is at (after migrating)."""

    database: Path
    from_revision: str
    to_revision: str | None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _revision(conn: sqlite3.Connection, what: str) -> str:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise TransferError(f"{what} is not a Setpoint database ({exc})") from None
    if row is None:
        raise TransferError(f"{what} is not a Setpoint database (no schema revision)")
    return str(row[0])


def backup_sqlite(database: Path, destination: Path, *, overwrite: bool = False) -> BackupInfo:
    """Copy ``database`` into ``destination`` consistently, also while servers write to it.

    The copy is written beside ``destination``, checked, flushed to disk and then renamed into place,
    so ``destination`` is either the previous file or the complete backup.
    """
    if not database.exists():
        raise TransferError(f"there is no database at {database}")
    if destination.exists() and not overwrite:
        raise TransferError(f"{destination} exists: choose another file name, or pass --overwrite to replace it")
    if destination.resolve() == database.resolve():
        raise TransferError("the backup file cannot be the database itself")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        source = _connect(database)
        try:
            target = sqlite3.connect(partial, isolation_level=None)
            try:
                # pages=-1: one step, inside one read transaction of the source, so one consistent snapshot.
                source.backup(target, pages=-1)
                target.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
                revision = _revision(target, str(database))
                check = target.execute("PRAGMA quick_check").fetchone()
                if check is None or check[0] != "ok":
                    raise TransferError(f"the backup of {database} failed its integrity check: {check}")
            finally:
                target.close()
        finally:
            source.close()
        _fsync(partial)
        os.replace(partial, destination)
        _fsync(destination.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupInfo(path=destination, revision=revision, size=destination.stat().st_size)


def inspect_backup(backup: Path) -> BackupInfo:
    """Check that ``backup`` is an intact Setpoint SQLite backup this version can restore; its revision."""
    from sqlalchemy.exc import SQLAlchemyError

    from setpoint._server.storage.migrate import known_revision

    if not backup.is_file():
        raise TransferError(f"there is no backup file at {backup}")
    try:
        conn = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:  # pragma: no cover - opening is lazy in sqlite3
        raise TransferError(f"{backup} is not a SQLite database ({exc})") from None
    try:
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise TransferError(f"{backup} is not a SQLite database ({exc})") from None
        if check is None or check[0] != "ok":
            raise TransferError(f"{backup} is damaged (SQLite integrity check: {check})")
        revision = _revision(conn, str(backup))
    finally:
        conn.close()
    if not known_revision(revision):
        raise TransferError(
            f"{backup} was made by a newer Setpoint (schema revision {revision}): restore it with that version"
        )
    engine = sqlite_engine(f"sqlite:///{backup.resolve()}")
    try:
        unknown = unknown_tables(engine)
    except SQLAlchemyError as exc:  # pragma: no cover - the quick_check above already read every page
        raise TransferError(f"{backup} cannot be read: {exc}") from None
    finally:
        engine.dispose()
    if unknown:
        raise TransferError(f"{backup} has tables this Setpoint does not know: {', '.join(unknown)}")
    return BackupInfo(path=backup, revision=revision, size=backup.stat().st_size)


def restore_sqlite(backup: Path, database: Path, *, overwrite: bool = False) -> RestoreResult:
    """Make ``database`` exactly the state in ``backup``, then migrate it to the newest schema.

    Refuses to replace an existing database unless ``overwrite``, and refuses while any Setpoint process
    (a server, a command) has the database open. SQLite replaces the content in one transaction, so an
    interrupted restore leaves the old database.
    """
    from setpoint._server.storage.migrate import current_revision, upgrade

    info = inspect_backup(backup)
    if backup.resolve() == database.resolve():
        raise TransferError("the backup file is the database itself")
    exists = database.exists() and database.stat().st_size > 0
    if exists and not overwrite:
        raise TransferError(f"{database} already holds a database: restoring replaces all of it; pass --yes to confirm")
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = InstanceLock(database, exclusive=True)
    except BlockingIOError:
        raise DatabaseInUseError(
            f"{database} is in use by a running Setpoint (a server or a command): stop it before restoring"
        ) from None
    try:
        source = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
        try:
            target = _connect(database)
            try:
                source.backup(target, pages=-1)
                target.execute("PRAGMA journal_mode=WAL")
                target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                target.close()
        finally:
            source.close()
        _fsync(database.parent)  # the file may be new: make its directory entry durable too
        engine = sqlite_engine(f"sqlite:///{database}")
        try:
            upgrade(engine)
            to_revision = current_revision(engine)
        finally:
            engine.dispose()
    finally:
        lock.release()
    return RestoreResult(database=database, from_revision=info.revision, to_revision=to_revision)
