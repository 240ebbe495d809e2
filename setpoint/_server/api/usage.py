"""Usage over the API: SDKs report evaluation counts, people read them, CI uploads code references.

``POST /v1/usage/`` takes a read key (what applications hold); uploading code references takes a write key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from setpoint._server.api.deps import IsoDateTime, reader, server_state, writer
from setpoint._server.auth import Principal
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.usage import ingest, refs, report

router = APIRouter(prefix="/v1", tags=["usage"])

Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]

MAX_RANGE = timedelta(days=400)


@router.post("/usage/", status_code=202, summary="Report evaluation counts (SDKs send one batch a minute)")
def post_usage(request: Request, batch: ingest.UsageBatch, caller: Reader) -> dict[str, Any]:
    """Add a batch of counts to the current hour. The batch is validated whole: a bad one stores nothing."""
    added = ingest.record_batch(server_state(request).ctx, caller.project_id, batch)
    return {"accepted": added}


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidError(f"{name}: give a time zone, e.g. 2026-11-30T12:00:00Z")
    return value.astimezone(UTC)


@router.get("/usage/", summary="A variable's evaluation counts per label over time")
def get_usage(
    request: Request,
    caller: Reader,
    variable: Annotated[str, Query(min_length=1, max_length=128)],
    start: Annotated[IsoDateTime | None, Query(alias="from")] = None,
    end: Annotated[IsoDateTime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Hourly buckets for ranges up to 3 days, daily beyond (default: the last 7 days)."""
    default_start, default_end = report.default_range()
    start = _aware(start, "from") or default_start
    end = _aware(end, "to") or default_end
    if end <= start:
        raise InvalidError("'to' must be after 'from'")
    if end - start > MAX_RANGE:
        raise InvalidError(f"the range is longer than {MAX_RANGE.days} days; ask for a shorter one")
    series = report.usage_series(server_state(request).ctx, caller.project_id, variable, start, end)
    return series.as_json()


@router.get("/usage/stale/", summary="Variables not evaluated lately, or serving one label to everyone")
def get_stale(request: Request, caller: Reader) -> list[dict[str, Any]]:
    """The stale rule: not evaluated for ``SETPOINT_STALE_DAYS`` (30), or one label at 100% with no rules and no
    change for as long."""
    state = server_state(request)
    found = report.stale_variables(state.ctx, caller.project_id, state.settings.stale_days)
    return [
        {
            "name": s.name,
            "reason": s.reason,
            "last_seen_at": s.last_seen_at.isoformat() if s.last_seen_at else None,
        }
        for s in found
    ]


@router.post("/code-refs/", summary="Upload where code defines variables (replaces the repository's upload)")
def post_code_refs(request: Request, body: refs.CodeRefsUpload, caller: Writer) -> dict[str, Any]:
    """What ``setpoint refs --upload`` sends."""
    stored = refs.upload(server_state(request).ctx, caller.project_id, body)
    return {"repository": body.repository, "stored": stored}


@router.get("/code-refs/", summary="Where code defines variables")
def get_code_refs(
    request: Request, caller: Reader, variable: Annotated[str | None, Query(max_length=128)] = None
) -> list[dict[str, Any]]:
    """Every uploaded reference (one variable's with ``?variable=``)."""
    return [refs.ref_json(r) for r in refs.list_refs(server_state(request).ctx, caller.project_id, variable)]
