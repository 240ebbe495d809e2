"""Alembic environment: the engine comes from ``config.attributes`` (see ``storage/migrate.py``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Engine

from setpoint._server.storage.schema import metadata

# Several server processes may start at once against one PostgreSQL: one migrates, the others wait.
_PG_MIGRATION_LOCK = 0x5E7901

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    connection.execution_options(setpoint_write=True)
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        context.run_migrations()
    connection.commit()
