"""Storage of change requests, their comments and the per-project review settings (SQLite and PostgreSQL, one
implementation over the connection of an open transaction, so a request is written in the same transaction as
the change it describes or applies)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from setpoint._server.storage import ReadTx
from setpoint._server.storage import schema as t

OPEN = "open"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
STALE = "stale"
APPLIED = "applied"
STATES: tuple[str, ...] = (OPEN, APPROVED, REJECTED, WITHDRAWN, STALE, APPLIED)
ACTIVE: tuple[str, ...] = (OPEN, APPROVED, STALE)
"""States in which a request still waits for someone (counted in the nav)."""


@dataclass(frozen=True)
class ReviewSettings:
    """A project's review settings (the defaults when the admin never set them: review off)."""

    protected_labels: bool = False
    all_targeting: bool = False
    approver_role: str = "editor"
    admins_bypass: bool = True

    @property
    def enabled(self) -> bool:
        """Whether any change needs review."""
        return self.protected_labels or self.all_targeting


@dataclass(frozen=True)
class ChangeRequest:
    """One stored request."""

    id: int
    project_id: int
    variable: str
    title: str
    author: str
    state: str
    base_revision: int
    diff: dict[str, Any]
    bypassed: bool
    created_at: datetime
    updated_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    applied_by: str | None
    applied_at: datetime | None


@dataclass(frozen=True)
class Comment:
    """A comment on a request."""

    id: int
    request_id: int
    author: str
    body: str
    created_at: datetime


def _conn(tx: ReadTx) -> Connection:
    conn = getattr(tx, "conn", None)
    if not isinstance(conn, Connection):  # every storage is SQL (SqlReadTx / SqlWriteTx)
        raise TypeError(f"{type(tx).__name__} has no SQL connection")
    return conn


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _request(row: Row[Any]) -> ChangeRequest:
    return ChangeRequest(
        id=row.id,
        project_id=row.project_id,
        variable=row.variable,
        title=row.title,
        author=row.author,
        state=row.state,
        base_revision=row.base_revision,
        diff=json.loads(row.diff),
        bypassed=bool(row.bypassed),
        created_at=_utc(row.created_at) or row.created_at,
        updated_at=_utc(row.updated_at) or row.updated_at,
        reviewed_by=row.reviewed_by,
        reviewed_at=_utc(row.reviewed_at),
        applied_by=row.applied_by,
        applied_at=_utc(row.applied_at),
    )


def get_settings(tx: ReadTx, project_id: int) -> ReviewSettings:
    """A project's review settings."""
    c = t.review_settings.c
    row = _conn(tx).execute(sa.select(t.review_settings).where(c.project_id == project_id)).first()
    if row is None:
        return ReviewSettings()
    return ReviewSettings(
        protected_labels=bool(row.protected_labels),
        all_targeting=bool(row.all_targeting),
        approver_role=row.approver_role,
        admins_bypass=bool(row.admins_bypass),
    )


def put_settings(tx: ReadTx, project_id: int, settings: ReviewSettings, actor: str, at: datetime) -> None:
    """Replace a project's review settings."""
    conn = _conn(tx)
    values = {
        "protected_labels": settings.protected_labels,
        "all_targeting": settings.all_targeting,
        "approver_role": settings.approver_role,
        "admins_bypass": settings.admins_bypass,
        "updated_by": actor,
        "updated_at": at,
    }
    c = t.review_settings.c
    done = conn.execute(sa.update(t.review_settings).where(c.project_id == project_id).values(**values))
    if done.rowcount == 0:
        conn.execute(sa.insert(t.review_settings).values(project_id=project_id, **values))


def insert(
    tx: ReadTx,
    project_id: int,
    *,
    variable: str,
    title: str,
    author: str,
    state: str,
    base_revision: int,
    diff: dict[str, Any],
    at: datetime,
    bypassed: bool = False,
) -> ChangeRequest:
    """Store a new request."""
    values = {
        "project_id": project_id,
        "variable": variable,
        "title": title,
        "author": author,
        "state": state,
        "base_revision": base_revision,
        "diff": json.dumps(diff),
        "bypassed": bypassed,
        "created_at": at,
        "updated_at": at,
    }
    if state == APPLIED:
        values |= {"applied_by": author, "applied_at": at}
    request_id = _conn(tx).execute(sa.insert(t.change_requests).values(**values).returning(t.change_requests.c.id))
    found = get(tx, project_id, int(request_id.scalar_one()))
    assert found is not None
    return found


def get(tx: ReadTx, project_id: int, request_id: int, *, lock: bool = False) -> ChangeRequest | None:
    """One request of a project (None: no such request in this project); ``lock``: FOR UPDATE (PostgreSQL)."""
    if not 1 <= request_id <= 2**31 - 1:  # beyond the column's range: no such request (never a database error)
        return None
    c = t.change_requests.c
    stmt = sa.select(t.change_requests).where(c.project_id == project_id, c.id == request_id)
    if lock:
        stmt = stmt.with_for_update()  # ignored by SQLite, whose write transactions are serialized anyway
    row = _conn(tx).execute(stmt).first()
    return None if row is None else _request(row)


def list_requests(
    tx: ReadTx, project_id: int, *, states: tuple[str, ...] = (), variable: str | None = None, limit: int = 200
) -> list[ChangeRequest]:
    """A project's requests, newest first (optionally only some states, or one variable's)."""
    c = t.change_requests.c
    stmt = sa.select(t.change_requests).where(c.project_id == project_id)
    if states:
        stmt = stmt.where(c.state.in_(states))
    if variable is not None:
        stmt = stmt.where(c.variable == variable)
    rows = _conn(tx).execute(stmt.order_by(c.id.desc()).limit(limit))
    return [_request(r) for r in rows]


def count_active(tx: ReadTx, project_id: int) -> int:
    """How many requests of a project wait for someone (open, approved or stale)."""
    c = t.change_requests.c
    stmt = sa.select(sa.func.count()).where(c.project_id == project_id, c.state.in_(ACTIVE))
    return int(_conn(tx).execute(stmt).scalar_one())


def update(tx: ReadTx, request: ChangeRequest, at: datetime, **values: Any) -> ChangeRequest:
    """Change some columns of a request (``diff`` as a dict)."""
    if "diff" in values:
        values["diff"] = json.dumps(values["diff"])
    c = t.change_requests.c
    _conn(tx).execute(sa.update(t.change_requests).where(c.id == request.id).values(updated_at=at, **values))
    found = get(tx, request.project_id, request.id)
    assert found is not None
    return found


def add_comment(tx: ReadTx, request_id: int, author: str, body: str, at: datetime) -> Comment:
    """Append a comment."""
    table = t.change_request_comments
    values = {"request_id": request_id, "author": author, "body": body, "created_at": at}
    comment_id = _conn(tx).execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()
    return Comment(id=int(comment_id), request_id=request_id, author=author, body=body, created_at=at)


def list_comments(tx: ReadTx, request_id: int) -> list[Comment]:
    """A request's comments, oldest first."""
    c = t.change_request_comments.c
    rows = _conn(tx).execute(sa.select(t.change_request_comments).where(c.request_id == request_id).order_by(c.id))
    return [Comment(r.id, r.request_id, r.author, r.body, _utc(r.created_at) or r.created_at) for r in rows]
