"""Segments: create, replace, patch (semantic-patch instructions), delete, list, history.

A segment is stored as its `setpoint.config.Segment` JSON document plus ``created_at``. Every write is one
transaction that validates what it touches (the segment and the segments it reaches: unknown references and
cycles are refused with 400 naming them) before it commits, is audited, and is announced to the snapshot cache
and the SSE streams. A segment that a variable's override or another segment refers to cannot be deleted (409
naming them; only the rows that mention it are read).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from setpoint._server.services import audit
from setpoint._server.services.changes import Change, EventName
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    PreconditionFailedError,
    ServiceError,
)
from setpoint._server.services.limits import segment_problem
from setpoint._server.services.segments.patch import PatchError, apply_instructions, validate_segment
from setpoint._server.services.validation import check_segment_write
from setpoint._server.storage import AlreadyExistsError, ReadTx, StaleRevisionError, WriteTx
from setpoint._server.storage.records import AuditEntry
from setpoint._server.storage.records import Segment as SegmentRecord
from setpoint.config import Segment

__all__ = [
    "SegmentInvalidError",
    "SegmentView",
    "create_segment",
    "delete_segment",
    "get_segment",
    "list_segments",
    "patch_segment",
    "replace_segment",
    "restore_segment",
    "segment_history",
]


class _StaleError(ConflictError):
    """The segment changed between reading it and writing it."""


_PATCH_ATTEMPTS = 8
_patch_locks: dict[tuple[int, str], threading.Lock] = {}
_patch_locks_guard = threading.Lock()


def _patch_lock(project_id: int, key: str) -> threading.Lock:
    """Serializes patches of one segment inside this process (other processes are handled by retrying)."""
    with _patch_locks_guard:
        if len(_patch_locks) > 10_000:
            _patch_locks.clear()
        return _patch_locks.setdefault((project_id, key), threading.Lock())


class SegmentInvalidError(ServiceError):
    """A segment (or the project config it would produce) is invalid: 400 with a message naming the problem."""

    status_code = 400


@dataclass(frozen=True)
class SegmentView:
    """A stored segment: the validated model, its revision (bumped on every change) and timestamps."""

    segment: Segment
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def wire(self) -> dict[str, Any]:
        """The segment's JSON as the config snapshot serves it."""
        return self.segment.model_dump(mode="json")


def _created_at(record: SegmentRecord) -> datetime:
    raw = record.data.get("created_at")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    return record.updated_at


def _view(record: SegmentRecord) -> SegmentView:
    data = {k: v for k, v in record.data.items() if k != "created_at"}
    segment = Segment.model_validate({**data, "key": record.key})
    return SegmentView(segment, record.revision, _created_at(record), record.updated_at)


def _document(segment: Segment, created_at: datetime) -> dict[str, Any]:
    return {**segment.model_dump(mode="json"), "created_at": created_at.isoformat()}


def _require(tx: ReadTx, project_id: int, key: str) -> SegmentRecord:
    record = tx.get_segment(project_id, key)
    if record is None:
        raise NotFoundError(f"segment {key!r} does not exist in this project")
    return record


def _check_if_match(record: SegmentRecord, if_match: int | None) -> None:
    if if_match is not None and if_match != record.revision:
        raise PreconditionFailedError(
            f"segment {record.key!r} is at revision {record.revision}, not {if_match} (If-Match): "
            "someone changed it since you read it; fetch it again and reapply your change"
        )


def _check_segment(tx: WriteTx, project_id: int, segment: Segment) -> None:
    try:
        check_segment_write(tx, project_id, segment)
    except InvalidError as exc:
        raise SegmentInvalidError(exc.message, errors=exc.errors) from None


def _write(
    ctx: ServiceContext,
    project_id: int,
    segment: Segment,
    actor: str,
    *,
    current: SegmentRecord | None,
    event: EventName,
    action: str | None = None,
) -> SegmentView:
    """Store ``segment`` (create when ``current`` is None), validate the project, audit and announce."""
    problem = segment_problem(segment, ctx.limits)
    if problem is not None:
        raise SegmentInvalidError(problem)
    created_at = _created_at(current) if current is not None else datetime.now(UTC)
    with ctx.storage.write() as tx:
        expected = None if current is None else current.revision
        try:
            record = tx.put_segment(project_id, segment.key, _document(segment, created_at), expected)
        except AlreadyExistsError:
            raise ConflictError(f"segment {segment.key!r} already exists") from None
        except StaleRevisionError:
            raise _StaleError(
                f"segment {segment.key!r} was changed by someone else at the same time; fetch it and retry"
            ) from None
        _check_segment(tx, project_id, segment)
        before = None if current is None else _view(current).wire
        action = action or ("create" if current is None else "update")
        audit.record(tx, project_id, actor, action, "segment", segment.key, before, segment.model_dump(mode="json"))
        change = Change(project_id=project_id, entity="segment", event=event, name=segment.key)
        ctx.sink.record(tx, change)
    ctx.sink.applied(change)
    return _view(record)


def _validated(data: dict[str, Any]) -> Segment:
    try:
        return validate_segment(data)
    except PatchError as exc:
        raise SegmentInvalidError(str(exc)) from None


def list_segments(ctx: ServiceContext, project_id: int, query: str = "") -> list[SegmentView]:
    """Every segment of the project, by key; with ``query``, those whose key, name, description or a tag contains
    it (ignoring case)."""
    with ctx.storage.read() as tx:
        views = [_view(r) for r in tx.list_segments(project_id)]
    needle = query.strip().casefold()
    if not needle:
        return views
    return [
        v
        for v in views
        if any(
            needle in text.casefold()
            for text in (v.segment.key, v.segment.name, v.segment.description or "", *v.segment.tags)
        )
    ]


def get_segment(ctx: ServiceContext, project_id: int, key: str) -> SegmentView:
    """One segment; 404 when missing."""
    with ctx.storage.read() as tx:
        return _view(_require(tx, project_id, key))


def create_segment(ctx: ServiceContext, project_id: int, data: dict[str, Any], actor: str) -> SegmentView:
    """Create a segment from its JSON (the `Segment` shape); 409 when the key is taken."""
    segment = _validated(data)
    with ctx.storage.read() as tx:
        if tx.get_segment(project_id, segment.key) is not None:
            raise ConflictError(f"segment {segment.key!r} already exists")
    return _write(ctx, project_id, segment, actor, current=None, event="created")


def replace_segment(
    ctx: ServiceContext, project_id: int, key: str, data: dict[str, Any], actor: str, if_match: int | None = None
) -> SegmentView:
    """Replace a segment's whole document (``key`` in the body, if any, must match the URL)."""
    if data.get("key", key) != key:
        raise SegmentInvalidError(f"the body names segment {data.get('key')!r} but the URL names {key!r}")
    segment = _validated({**data, "key": key})
    with ctx.storage.read() as tx:
        current = _require(tx, project_id, key)
    _check_if_match(current, if_match)
    return _write(ctx, project_id, segment, actor, current=current, event="updated")


def patch_segment(
    ctx: ServiceContext, project_id: int, key: str, instructions: Any, actor: str, if_match: int | None = None
) -> SegmentView:
    """Apply semantic-patch instructions (all or nothing); 400 naming the instruction that is wrong.

    Instructions state intent ("add these keys"), so when someone else changed the segment meanwhile they are
    applied again to the new state (unless ``if_match`` pins the revision: then 412).
    """
    with _patch_lock(project_id, key):
        return _patch(ctx, project_id, key, instructions, actor, if_match)


def _patch(
    ctx: ServiceContext, project_id: int, key: str, instructions: Any, actor: str, if_match: int | None
) -> SegmentView:
    for attempt in range(_PATCH_ATTEMPTS):
        with ctx.storage.read() as tx:
            current = _require(tx, project_id, key)
        _check_if_match(current, if_match)
        doc = {k: v for k, v in current.data.items() if k != "created_at"}
        try:
            segment = apply_instructions({**doc, "key": key}, instructions)
        except PatchError as exc:
            raise SegmentInvalidError(str(exc)) from None
        try:
            return _write(ctx, project_id, segment, actor, current=current, event="updated")
        except _StaleError:
            if if_match is not None or attempt == _PATCH_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.005 * 2**attempt))  # jittered backoff: let the other writer finish
    raise AssertionError("unreachable")


def delete_segment(ctx: ServiceContext, project_id: int, key: str, actor: str, if_match: int | None = None) -> None:
    """Delete a segment; 409 naming the variables (overrides) and segments that still refer to it."""
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, key)
        _check_if_match(current, if_match)
        variables, segments = tx.segment_referrers(project_id, key)
        if variables or segments:
            users = [f"variable(s) {', '.join(variables)}"] if variables else []
            users += [f"segment(s) {', '.join(segments)}"] if segments else []
            raise ConflictError(
                f"segment {key!r} is still used by {' and '.join(users)}; remove those references first",
                errors=[{"variables": variables, "segments": segments}],
            )
        before = _view(current).wire
        tx.delete_segment(project_id, key)
        audit.record(tx, project_id, actor, "delete", "segment", key, before, None)
        change = Change(project_id=project_id, entity="segment", event="deleted", name=key)
        ctx.sink.record(tx, change)
    ctx.sink.applied(change)


def segment_history(ctx: ServiceContext, project_id: int, key: str, limit: int = 100) -> list[AuditEntry]:
    """The audit entries of one segment, newest first (the segment may since have been deleted); 404 when the
    segment neither exists nor ever did."""
    with ctx.storage.read() as tx:
        entries = tx.list_audit(project_id, entity_type="segment", entity_name=key, limit=limit)
        if not entries and tx.get_segment(project_id, key) is None:
            raise NotFoundError(f"segment {key!r} does not exist in this project")
    return entries


def restore_segment(
    ctx: ServiceContext, project_id: int, key: str, entry_id: int, actor: str, if_match: int | None = None
) -> SegmentView:
    """Make the segment what it was right after the change ``entry_id`` of its history (audited as a restore,
    validated like any replacement, refused with 412 when ``if_match`` is stale)."""
    with ctx.storage.read() as tx:
        current = _require(tx, project_id, key)
        entries = tx.list_audit(project_id, entity_type="segment", entity_name=key, limit=10_000)
    entry = next((e for e in entries if e.id == entry_id), None)
    if entry is None:
        raise NotFoundError(f"segment {key!r} has no history entry {entry_id}")
    if not isinstance(entry.after, dict):
        raise SegmentInvalidError(f"history entry {entry_id} deleted segment {key!r}: choose an entry that saved it")
    _check_if_match(current, if_match)
    segment = _validated({**entry.after, "key": key})
    return _write(ctx, project_id, segment, actor, current=current, event="updated", action="restore")
