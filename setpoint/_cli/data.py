"""``setpoint backup|restore|copy-data``: keep and move a whole instance (see README, "Backup and restore")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from setpoint._server.cli_options import DEFAULT_DATA_DIR_PATH, DatabaseUrlOption, DataDirOption

PG_DUMP_HINT = (
    "for PostgreSQL use its own tools while the server runs: "
    "`pg_dump --format=custom --file=FILE URL`, and to restore into a new database "
    "`pg_restore --no-owner --dbname=URL FILE` (README, 'Backup and restore')"
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _sqlite_file(data_dir: Path, database_url: str | None, command: str) -> Path:
    from setpoint._server.settings import Settings
    from setpoint._server.storage.engines import sqlite_path

    url = Settings(data_dir=data_dir, database_url=database_url).effective_database_url
    path = sqlite_path(url)
    if path is None:
        if url.startswith(("postgresql", "postgres")):
            raise _fail(f"`setpoint {command}` works on SQLite instances; {PG_DUMP_HINT}")
        raise _fail(f"`setpoint {command}` needs a SQLite database file, not {url}")
    return path


def backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write (a SQLite database).")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace FILE if it exists.")] = False,
) -> None:
    """Write a consistent backup of the SQLite database to FILE, also while the server runs."""
    from setpoint._server.storage.backup import backup_sqlite
    from setpoint._server.storage.copy import TransferError

    database = _sqlite_file(data_dir, database_url, "backup")
    try:
        info = backup_sqlite(database, file, overwrite=overwrite)
    except TransferError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"backed up {database} to {info.path} ({info.size:,} bytes, schema revision {info.revision})")


def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `setpoint backup`.")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Replace the existing database without asking.")] = False,
) -> None:
    """Replace the (stopped) instance's SQLite database with FILE, then migrate it to the newest schema."""
    from setpoint._server.storage.backup import restore_sqlite
    from setpoint._server.storage.base import StorageError

    database = _sqlite_file(data_dir, database_url, "restore")
    try:
        result = restore_sqlite(file, database, overwrite=yes)
    except StorageError as exc:
        raise _fail(str(exc)) from None
    migrated = "" if result.from_revision == result.to_revision else f", migrated to {result.to_revision}"
    typer.echo(f"restored {file} (schema revision {result.from_revision}) into {database}{migrated}")


def copy_data(
    to: Annotated[
        str, typer.Option("--to", help="The empty target database, e.g. postgresql://user:password@host/db.")
    ],
    data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Copy the whole instance (SQLite in --data-dir, or --database-url) into an empty database at --to.

    Everything is copied (projects, variables with every version, labels and their history, segments,
    types, audit, API keys, people) except web login sessions. Stop the server first so that no change
    made after the copy is lost, then start it with --database-url pointing at the target.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from setpoint._server.settings import Settings
    from setpoint._server.storage import open_storage
    from setpoint._server.storage.copy import TransferError, copy_instance
    from setpoint._server.storage.engines import in_use, normalize_url, sqlite_path

    source_url = Settings(data_dir=data_dir, database_url=database_url).effective_database_url
    if normalize_url(source_url) == normalize_url(to):
        raise _fail("--to is the source database itself: give a new, empty database")
    source_file = sqlite_path(source_url)
    if source_file is not None and source_file.exists() and in_use(source_file):
        typer.echo(
            f"warning: a Setpoint process is using {source_file}; the copy is a consistent snapshot, but changes "
            "made after it will not be in the target: stop the server before moving",
            err=True,
        )
    try:
        source = open_storage(source_url)
        target = open_storage(to)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        result = copy_instance(source.engine, target.engine, target_name=target.url)
    except TransferError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"the copy failed, no row was written to the target (only its schema): {exc}") from None
    finally:
        source.dispose()
        target.dispose()
    total = sum(result.rows.values())
    typer.echo(f"copied {total:,} rows from {source.url} to {target.url}:")
    for name, count in result.rows.items():
        typer.echo(f"  {name}: {count:,}")
    for name, count in result.skipped.items():
        typer.echo(f"  {name}: {count:,} not copied")
    typer.echo("next: setpoint serve --database-url <the --to URL>")


def register(app: typer.Typer) -> None:
    """Add ``setpoint backup``, ``setpoint restore`` and ``setpoint copy-data``."""
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("copy-data")(copy_data)
