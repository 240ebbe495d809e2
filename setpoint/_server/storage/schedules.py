"""Storage of scheduled changes and progressive rollouts (SQLite and PostgreSQL, one implementation).

Every function runs inside a transaction of the main storage (``storage.read()`` / ``storage.write()``), so a
scheduled change, the variable change it makes and its audit entries commit together. Due work is claimed
with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL: several server processes never claim the same row.
SQLite has one writer at a time (``BEGIN IMMEDIATE``), which serializes claims the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from setpoint._server.storage import ReadTx, WriteTx
from setpoint._server.storage import schema as t
from setpoint._server.storage.sql_read import SqlReadTx

PENDING = "pending"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
SCHEDULE_STATES = (PENDING, DONE, FAILED, CANCELLED)

ACTIVE = "active"
PAUSED = "paused"
ABORTED = "aborted"
COMPLETED = "completed"
UNFINISHED = (ACTIVE, PAUSED)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _maybe_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _conn(tx: ReadTx) -> Connection:
    if not isinstance(tx, SqlReadTx):  # pragma: no cover - the SQL storage is the only implementation
        raise TypeError("scheduled work needs the SQL storage")
    return tx.conn


def _dialect(tx: ReadTx) -> str:
    return _conn(tx).dialect.name


@dataclass(frozen=True)
class Schedule:
    """One piece of scheduled work."""

    id: int
    project_id: int
    variable: str
    kind: str
    payload: dict[str, Any]
    due_at: datetime
    state: str
    created_by: str
    created_at: datetime
    ran_at: datetime | None
    late_seconds: int | None
    error: str | None
    rollout_id: int | None


@dataclass(frozen=True)
class ProgressiveRollout:
    """A progressive rollout of one label of one variable."""

    id: int
    project_id: int
    variable: str
    label: str
    start_weight: float
    target_weight: float
    steps: int
    interval_seconds: int
    next_step: int
    weight: float | None
    state: str
    note: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(
        id=row.id,
        project_id=row.project_id,
        variable=row.variable,
        kind=row.kind,
        payload=json.loads(row.payload),
        due_at=_utc(row.due_at),
        state=row.state,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        ran_at=_maybe_utc(row.ran_at),
        late_seconds=row.late_seconds,
        error=row.error,
        rollout_id=row.rollout_id,
    )


def _rollout(row: Row[Any]) -> ProgressiveRollout:
    return ProgressiveRollout(
        id=row.id,
        project_id=row.project_id,
        variable=row.variable,
        label=row.label,
        start_weight=row.start_weight,
        target_weight=row.target_weight,
        steps=row.steps,
        interval_seconds=row.interval_seconds,
        next_step=row.next_step,
        weight=row.weight,
        state=row.state,
        note=row.note,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


# --- schedules -----------------------------------------------------------------------------------------------


def add_schedule(
    tx: WriteTx,
    project_id: int,
    variable: str,
    kind: str,
    payload: dict[str, Any],
    due_at: datetime,
    created_by: str,
    now: datetime,
    *,
    rollout_id: int | None = None,
) -> Schedule:
    """Store a pending schedule."""
    values = {
        "project_id": project_id,
        "variable": variable,
        "kind": kind,
        "payload": json.dumps(payload),
        "due_at": _utc(due_at),
        "state": PENDING,
        "created_by": created_by,
        "created_at": _utc(now),
        "rollout_id": rollout_id,
    }
    new_id = _conn(tx).execute(sa.insert(t.schedules).values(**values).returning(t.schedules.c.id)).scalar_one()
    found = get_schedule(tx, project_id, int(new_id))
    assert found is not None
    return found


def get_schedule(tx: ReadTx, project_id: int, schedule_id: int, *, lock: bool = False) -> Schedule | None:
    """A project's schedule by id (``lock``: FOR UPDATE on PostgreSQL)."""
    c = t.schedules.c
    stmt = sa.select(t.schedules).where(c.project_id == project_id, c.id == schedule_id)
    if lock and _dialect(tx) == "postgresql":
        stmt = stmt.with_for_update()
    row = _conn(tx).execute(stmt).first()
    return None if row is None else _schedule(row)


def list_schedules(
    tx: ReadTx,
    project_id: int,
    *,
    states: Sequence[str] = (),
    variable: str | None = None,
    rollout_id: int | None = None,
    limit: int = 200,
) -> list[Schedule]:
    """A project's schedules: pending ones first by due time, then the others newest first."""
    c = t.schedules.c
    stmt = sa.select(t.schedules).where(c.project_id == project_id)
    if states:
        stmt = stmt.where(c.state.in_(list(states)))
    if variable is not None:
        stmt = stmt.where(c.variable == variable)
    if rollout_id is not None:
        stmt = stmt.where(c.rollout_id == rollout_id)
    pending_first = sa.case((c.state == PENDING, 0), else_=1)
    stmt = stmt.order_by(pending_first, sa.case((c.state == PENDING, c.due_at), else_=None), c.due_at.desc(), c.id)
    return [_schedule(row) for row in _conn(tx).execute(stmt.limit(limit))]


def claim_due(tx: WriteTx, now: datetime) -> Schedule | None:
    """The oldest pending schedule due at ``now``, locked for this transaction; rows another process holds
    are skipped (PostgreSQL ``FOR UPDATE SKIP LOCKED``)."""
    c = t.schedules.c
    stmt = sa.select(t.schedules).where(c.state == PENDING, c.due_at <= _utc(now)).order_by(c.due_at, c.id).limit(1)
    if _dialect(tx) == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    row = _conn(tx).execute(stmt).first()
    return None if row is None else _schedule(row)


def next_due_at(tx: ReadTx) -> datetime | None:
    """When the next pending schedule (of any project) is due."""
    c = t.schedules.c
    value = _conn(tx).execute(sa.select(sa.func.min(c.due_at)).where(c.state == PENDING)).scalar()
    return None if value is None else _utc(value)


def finish_schedule(
    tx: WriteTx, schedule_id: int, state: str, *, ran_at: datetime | None, late_seconds: int | None, error: str | None
) -> None:
    """Mark a schedule done, failed or cancelled."""
    values = {"state": state, "ran_at": _maybe_utc(ran_at), "late_seconds": late_seconds, "error": error}
    _conn(tx).execute(sa.update(t.schedules).where(t.schedules.c.id == schedule_id).values(**values))


def lock_pending_of_rollout(tx: WriteTx, rollout_id: int) -> None:
    """Lock a rollout's pending steps (PostgreSQL), waiting for a runner that claimed one: taken before the
    rollout's own row, in the order the runner takes them (schedule, rollout, variable), so no deadlock."""
    if _dialect(tx) != "postgresql":
        return
    c = t.schedules.c
    stmt = sa.select(c.id).where(c.rollout_id == rollout_id, c.state == PENDING).with_for_update()
    _conn(tx).execute(stmt).all()


def cancel_pending_of_rollout(tx: WriteTx, rollout_id: int) -> list[int]:
    """Cancel a rollout's pending steps; their ids."""
    c = t.schedules.c
    where = sa.and_(c.rollout_id == rollout_id, c.state == PENDING)
    ids = [int(i) for i in _conn(tx).execute(sa.select(c.id).where(where)).scalars()]
    if ids:
        _conn(tx).execute(sa.update(t.schedules).where(where).values(state=CANCELLED))
    return ids


# --- progressive rollouts ------------------------------------------------------------------------------------


def add_rollout(
    tx: WriteTx,
    project_id: int,
    variable: str,
    label: str,
    start_weight: float,
    target_weight: float,
    steps: int,
    interval_seconds: int,
    created_by: str,
    now: datetime,
) -> ProgressiveRollout:
    """Store an active progressive rollout (no step applied yet)."""
    values = {
        "project_id": project_id,
        "variable": variable,
        "label": label,
        "start_weight": start_weight,
        "target_weight": target_weight,
        "steps": steps,
        "interval_seconds": interval_seconds,
        "next_step": 0,
        "weight": None,
        "state": ACTIVE,
        "note": None,
        "created_by": created_by,
        "created_at": _utc(now),
        "updated_at": _utc(now),
    }
    table = t.progressive_rollouts
    new_id = _conn(tx).execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()
    found = get_rollout(tx, project_id, int(new_id))
    assert found is not None
    return found


def get_rollout(tx: ReadTx, project_id: int, rollout_id: int, *, lock: bool = False) -> ProgressiveRollout | None:
    """A project's progressive rollout by id (``lock``: FOR UPDATE on PostgreSQL)."""
    c = t.progressive_rollouts.c
    stmt = sa.select(t.progressive_rollouts).where(c.project_id == project_id, c.id == rollout_id)
    if lock and _dialect(tx) == "postgresql":
        stmt = stmt.with_for_update()
    row = _conn(tx).execute(stmt).first()
    return None if row is None else _rollout(row)


def list_rollouts(
    tx: ReadTx, project_id: int, *, variable: str | None = None, states: Sequence[str] = (), limit: int = 100
) -> list[ProgressiveRollout]:
    """A project's progressive rollouts (optionally of one variable, in some states), newest first."""
    c = t.progressive_rollouts.c
    stmt = sa.select(t.progressive_rollouts).where(c.project_id == project_id)
    if variable is not None:
        stmt = stmt.where(c.variable == variable)
    if states:
        stmt = stmt.where(c.state.in_(list(states)))
    stmt = stmt.order_by(c.id.desc()).limit(limit)
    return [_rollout(row) for row in _conn(tx).execute(stmt)]


def update_rollout(tx: WriteTx, rollout_id: int, now: datetime, **values: Any) -> None:
    """Change some fields of a progressive rollout (``state``, ``next_step``, ``weight``, ``note``)."""
    allowed = {"state", "next_step", "weight", "note"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    table = t.progressive_rollouts
    _conn(tx).execute(sa.update(table).where(table.c.id == rollout_id).values(updated_at=_utc(now), **values))
