"""``setpoint migrate``: bring the database schema up to date (for operators; ``serve`` also does it)."""

from __future__ import annotations

import typer

from setpoint._server.cli_options import DEFAULT_DATA_DIR_PATH, DatabaseUrlOption, DataDirOption


def migrate(data_dir: DataDirOption = DEFAULT_DATA_DIR_PATH, database_url: DatabaseUrlOption = None) -> None:
    """Apply the database migrations (SQLite file in --data-dir, or --database-url)."""
    from setpoint._server.settings import Settings
    from setpoint._server.storage import open_storage
    from setpoint._server.storage.migrate import current_revision, head_revision

    settings = Settings(data_dir=data_dir, database_url=database_url)
    storage = open_storage(settings.effective_database_url)
    try:
        before = current_revision(storage.engine)
        storage.migrate()
        after = current_revision(storage.engine)
    finally:
        storage.dispose()
    if before == after:
        typer.echo(f"{storage.url}: already at the newest schema ({head_revision()})")
    else:
        typer.echo(f"{storage.url}: migrated from {before or 'empty'} to {after}")


def register(app: typer.Typer) -> None:
    """Add ``setpoint migrate``."""
    app.command("migrate")(migrate)
