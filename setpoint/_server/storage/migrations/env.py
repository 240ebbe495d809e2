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
    if connection.dialect.name == "sqlite":
        # Batch migrations rebuild SQLite tables (copy, drop, rename); with foreign keys on, dropping a
        # parent table would cascade-delete its children. Switched off outside any transaction (SQLite ignores
        # it inside one) on this connection only; the pool's next user of it gets them on again below.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    connection.execution_options(setpoint_write=True)
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        context.run_migrations()
    connection.commit()
    if connection.dialect.name == "sqlite":
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
