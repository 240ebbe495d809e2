"""Options shared by the server commands: where the database is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from setpoint._server.settings import DEFAULT_DATA_DIR

DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SETPOINT_DATA_DIR",
        help="Directory of the default SQLite database (created if missing).",
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SETPOINT_DATABASE_URL",
        help="Database URL, e.g. postgresql://user:password@host/db (default: SQLite in --data-dir).",
    ),
]
DEFAULT_DATA_DIR_PATH = Path(DEFAULT_DATA_DIR)
