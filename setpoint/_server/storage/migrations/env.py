"""Alembic environment: the engine comes from ``config.attributes`` (see ``storage/migrate.py``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from setpoint._server.storage.schema import metadata

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    connection.execution_options(setpoint_write=True)
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
