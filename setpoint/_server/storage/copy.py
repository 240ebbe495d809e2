"""Copy a whole instance from one database to another (SQLite -> PostgreSQL, and back), generic over the schema.

Every table of ``schema.metadata`` is copied in foreign-key order, except the ones in :data:`NOT_COPIED`;
a table added to the schema is carried without touching this module. The target must be empty; it is
migrated first, filled in one transaction, and its PostgreSQL sequences are moved past the copied ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from setpoint._server.storage.base import StorageError
from setpoint._server.storage.schema import metadata

NOT_COPIED: Mapping[str, str] = {
    "sessions": "web login sessions: people log in again on the new instance",
    "change_notifications": "notices between running server processes: the new instance starts with none",
    "login_failures": "failed-login counts that expire within the hour: the new instance starts with none",
}
"""Tables whose rows stay behind, with why. Every other table of the schema is copied."""

BOOKKEEPING_TABLES = frozenset({"alembic_version"})
"""Tables that are not part of ``schema.metadata``: the target gets its own by being migrated."""

BATCH_ROWS = 1000


class TransferError(StorageError):
    """A backup, restore or copy that cannot be done as asked (the message says what to do instead)."""


def copied_tables() -> list[sa.Table]:
    """The tables :func:`copy_instance` copies, parents before children."""
    return [table for table in metadata.sorted_tables if table.name not in NOT_COPIED]


def unknown_tables(engine: Engine) -> list[str]:
    """Tables in the database that this version of Setpoint does not know (so would not carry over)."""
    names = set(sa.inspect(engine).get_table_names())
    return sorted(names - set(metadata.tables) - BOOKKEEPING_TABLES)


def normalize_row(table: sa.Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as another backend should get it: timestamps as UTC-aware datetimes (SQLite returns naive UTC)."""
    out = dict(row)
    for column in table.columns:
        value = out.get(column.name)
        if isinstance(value, datetime):
            out[column.name] = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return out


def read_rows(conn: Connection, table: sa.Table) -> Iterator[Sequence[dict[str, Any]]]:
    """All rows of ``table`` in primary-key order, normalized, in batches."""
    query = sa.select(table).order_by(*table.primary_key.columns)
    result = conn.execution_options(yield_per=BATCH_ROWS).execute(query)
    for partition in result.mappings().partitions(BATCH_ROWS):
        yield [normalize_row(table, row) for row in partition]


def _first_non_empty_table(conn: Connection) -> str | None:
    existing = set(sa.inspect(conn).get_table_names())
    for table in metadata.sorted_tables:
        if table.name in existing and conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
            return table.name
    return None


def reset_sequences(conn: Connection) -> None:
    """Move each PostgreSQL id sequence past the largest id (inserting explicit ids does not advance them)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite allocates max(rowid) + 1 without a sequence (the schema uses no AUTOINCREMENT)
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            sequence = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            ).scalar()
            if sequence is None:
                continue
            largest = conn.execute(sa.select(sa.func.max(column))).scalar()
            conn.execute(
                sa.text("SELECT setval(CAST(:sequence AS regclass), :value, false)"),
                {"sequence": sequence, "value": (largest or 0) + 1},
            )


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_instance` copied: rows per table (copied tables only), and the tables left behind."""

    rows: dict[str, int]
    skipped: dict[str, int]


def check_target_empty(conn: Connection, where: str) -> None:
    """Refuse a target holding any Setpoint row or a table that is not Setpoint's."""
    foreign = sorted(set(sa.inspect(conn).get_table_names()) - set(metadata.tables) - BOOKKEEPING_TABLES)
    if foreign:
        raise TransferError(
            f"the target {where} has tables that are not Setpoint's ({', '.join(foreign)}): "
            "copy into a new, empty database"
        )
    table = _first_non_empty_table(conn)
    if table is not None:
        raise TransferError(
            f"the target {where} is not empty (table {table!r} has rows; was `setpoint serve` already started "
            "on it?): copy-data only writes into an empty database, so create a new one (e.g. `createdb`) "
            "and run copy-data before the first `setpoint serve` on it"
        )


def copy_instance(source: Engine, target: Engine, *, target_name: str) -> CopyResult:
    """Copy every table but :data:`NOT_COPIED` from ``source`` (at the newest schema) into an empty ``target``.

    The source is read in one transaction (a consistent snapshot, also while a server writes to it);
    the target is migrated to the newest schema, then written in one transaction.
    """
    from setpoint._server.storage.migrate import current_revision, head_revision, upgrade

    revision = current_revision(source)
    if revision != head_revision():
        raise TransferError(
            f"the source database is at schema revision {revision or 'none'}, this Setpoint writes "
            f"{head_revision()}: run `setpoint migrate` on the source first"
        )
    unknown = unknown_tables(source)
    if unknown:
        raise TransferError(
            f"the source has tables this Setpoint does not know ({', '.join(unknown)}): "
            "use the Setpoint version that created them"
        )
    with target.connect() as conn:
        check_target_empty(conn, target_name)
    upgrade(target)
    rows: dict[str, int] = {}
    skipped: dict[str, int] = {}
    with source.connect() as src:
        if source.dialect.name == "postgresql":
            src = src.execution_options(isolation_level="REPEATABLE READ")
        with src.begin(), target.connect() as dst:
            dst = dst.execution_options(setpoint_write=True)
            with dst.begin():
                check_target_empty(dst, target_name)  # nobody wrote between the check and the migration
                for table in copied_tables():
                    count = 0
                    for batch in read_rows(src, table):
                        dst.execute(sa.insert(table), list(batch))
                        count += len(batch)
                    rows[table.name] = count
                for name in NOT_COPIED:
                    count_rows = sa.select(sa.func.count()).select_from(metadata.tables[name])
                    skipped[name] = src.execute(count_rows).scalar_one()
                reset_sequences(dst)
    return CopyResult(rows=rows, skipped=skipped)
