"""Storage of SDK evaluation counts and code references (SQLite and PostgreSQL, one implementation).

Counts are upserted into hourly buckets (``count = count + excluded.count``), so a batch is one transaction
whatever its size and concurrent batches from many processes add up. `UsageStore.rollup` folds hourly rows
older than a cutoff into daily rows and deletes what is past retention; it claims the rows it folds with
``DELETE ... RETURNING``, so two processes running it at once never count a row twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from setpoint._server.storage import schema as t

HOUR = "hour"
DAY = "day"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def hour_start(at: datetime) -> datetime:
    """The start of the UTC hour containing ``at``."""
    return _utc(at).replace(minute=0, second=0, microsecond=0)


def day_start(at: datetime) -> datetime:
    """The start of the UTC day containing ``at``."""
    return _utc(at).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class CountRow:
    """Resolutions of one variable's label/version with one reason (label None / version None: code default)."""

    variable: str
    label: str | None
    version: int | None
    reason: str
    count: int


@dataclass(frozen=True)
class Bucket:
    """One stored bucket of counts."""

    bucket_start: datetime
    granularity: str
    label: str | None
    version: int | None
    reason: str
    count: int


@dataclass(frozen=True)
class VariableUsage:
    """What the variables list shows: when a variable was last evaluated and by how many processes."""

    last_seen_at: datetime | None
    processes: int


@dataclass(frozen=True)
class CodeRef:
    """One place in a repository where code defines a variable (``variable`` None: not a literal name)."""

    repository: str
    variable: str | None
    path: str
    line: int
    call: str
    commit_sha: str | None
    branch: str | None
    uploaded_at: datetime


class UsageStore:
    """Usage and code references over the server's SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that supports ``on_conflict_do_update`` on this database."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    # --- counts --------------------------------------------------------------------------------------------

    def record(self, project_id: int, rows: Iterable[CountRow], *, instance_id: str, sdk: str, at: datetime) -> None:
        """Add ``rows`` to the hour containing ``at`` and mark ``instance_id`` as a reader of their variables."""
        bucket = hour_start(at)
        merged: dict[tuple[str, str, int, str], int] = defaultdict(int)
        for row in rows:
            merged[(row.variable, row.label or "", row.version or 0, row.reason)] += row.count
        values = [
            {
                "project_id": project_id,
                "variable": variable,
                "label": label,
                "version": version,
                "reason": reason,
                "granularity": HOUR,
                "bucket_start": bucket,
                "count": count,
            }
            for (variable, label, version, reason), count in sorted(merged.items())
            if count > 0
        ]
        variables = sorted({key[0] for key in merged})
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=True)
            with conn.begin():
                if values:
                    self._add_counts(conn, values)
                if variables:
                    seen = [
                        {
                            "project_id": project_id,
                            "variable": name,
                            "instance_id": instance_id,
                            "sdk": sdk,
                            "last_seen_at": _utc(at),
                        }
                        for name in variables
                    ]
                    stmt = self._insert(t.usage_instances)
                    stmt = stmt.on_conflict_do_update(
                        index_elements=["project_id", "variable", "instance_id"],
                        set_={"last_seen_at": stmt.excluded.last_seen_at, "sdk": stmt.excluded.sdk},
                    )
                    conn.execute(stmt, seen)

    def _add_counts(self, conn: Connection, values: list[dict[str, Any]]) -> None:
        insert = self._insert(t.usage_counts)
        stmt = insert.on_conflict_do_update(
            index_elements=["project_id", "variable", "label", "version", "reason", "granularity", "bucket_start"],
            set_={"count": t.usage_counts.c.count + insert.excluded.count},
        )
        conn.execute(stmt, values)

    def buckets(self, project_id: int, variable: str, start: datetime, end: datetime) -> list[Bucket]:
        """A variable's stored buckets that start in ``[start, end)``, oldest first."""
        c = t.usage_counts.c
        query = (
            sa.select(c.bucket_start, c.granularity, c.label, c.version, c.reason, c.count)
            .where(c.project_id == project_id, c.variable == variable)
            .where(c.bucket_start >= _utc(start), c.bucket_start < _utc(end))
            .order_by(c.bucket_start, c.label, c.version, c.reason)
        )
        with self.engine.connect() as conn:
            return [
                Bucket(_utc(r.bucket_start), r.granularity, r.label or None, r.version or None, r.reason, int(r[5]))
                for r in conn.execute(query)
            ]

    def summaries(
        self, project_id: int, *, processes_since: datetime, variable: str | None = None
    ) -> dict[str, VariableUsage]:
        """Per variable name (only ``variable`` when given): the last time any process reported it, and how many
        did since ``processes_since``."""
        c = t.usage_instances.c
        query = sa.select(
            c.variable,
            sa.func.max(c.last_seen_at).label("last_seen_at"),
            sa.func.count().filter(c.last_seen_at >= _utc(processes_since)).label("processes"),
        ).where(c.project_id == project_id)
        if variable is not None:
            query = query.where(c.variable == variable)
        query = query.group_by(c.variable)
        with self.engine.connect() as conn:
            return {
                r.variable: VariableUsage(_utc(r.last_seen_at) if r.last_seen_at else None, int(r.processes))
                for r in conn.execute(query)
            }

    def rollup(self, *, now: datetime, hourly_days: int, retention_days: int) -> tuple[int, int]:
        """Fold hourly buckets older than ``hourly_days`` into days, drop buckets older than ``retention_days``
        and reporting processes not seen within it. Returns (hourly rows folded, rows deleted)."""
        c = t.usage_counts.c
        cutoff = day_start(now - timedelta(days=hourly_days))
        expiry = _utc(now - timedelta(days=retention_days))
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=True)
            with conn.begin():
                claimed = conn.execute(
                    sa.delete(t.usage_counts)
                    .where(c.granularity == HOUR, c.bucket_start < cutoff)
                    .returning(c.project_id, c.variable, c.label, c.version, c.reason, c.bucket_start, c.count)
                ).all()
                merged: dict[tuple[int, str, str, int, str, datetime], int] = defaultdict(int)
                for r in claimed:
                    key = (r.project_id, r.variable, r.label, r.version, r.reason, day_start(r.bucket_start))
                    merged[key] += int(r[6])
                if merged:
                    self._add_counts(
                        conn,
                        [
                            {
                                "project_id": project,
                                "variable": variable,
                                "label": label,
                                "version": version,
                                "reason": reason,
                                "granularity": DAY,
                                "bucket_start": day,
                                "count": count,
                            }
                            for (project, variable, label, version, reason, day), count in sorted(merged.items())
                        ],
                    )
                deleted = conn.execute(sa.delete(t.usage_counts).where(c.bucket_start < expiry)).rowcount or 0
                conn.execute(sa.delete(t.usage_instances).where(t.usage_instances.c.last_seen_at < expiry))
        return len(claimed), int(deleted)

    # --- code references -----------------------------------------------------------------------------------

    def replace_code_refs(
        self,
        project_id: int,
        repository: str,
        refs: Iterable[tuple[str | None, str, int, str]],
        *,
        commit_sha: str | None,
        branch: str | None,
        at: datetime,
    ) -> int:
        """Replace every reference of ``repository`` with ``refs`` ((variable, path, line, call) tuples)."""
        c = t.code_refs.c
        values = [
            {
                "project_id": project_id,
                "repository": repository,
                "variable": variable,
                "path": path,
                "line": line,
                "call": call,
                "commit_sha": commit_sha,
                "branch": branch,
                "uploaded_at": _utc(at),
            }
            for variable, path, line, call in refs
        ]
        with self.engine.connect() as conn:
            conn.execution_options(setpoint_write=True)
            with conn.begin():
                conn.execute(sa.delete(t.code_refs).where(c.project_id == project_id, c.repository == repository))
                if values:
                    conn.execute(sa.insert(t.code_refs), values)
        return len(values)

    def code_refs(self, project_id: int, variable: str | None = None) -> list[CodeRef]:
        """A project's code references (one variable's when given), by repository, path and line."""
        c = t.code_refs.c
        query = sa.select(t.code_refs).where(c.project_id == project_id)
        if variable is not None:
            query = query.where(c.variable == variable)
        query = query.order_by(c.repository, c.path, c.line)
        with self.engine.connect() as conn:
            return [
                CodeRef(r.repository, r.variable, r.path, r.line, r.call, r.commit_sha, r.branch, _utc(r.uploaded_at))
                for r in conn.execute(query)
            ]
