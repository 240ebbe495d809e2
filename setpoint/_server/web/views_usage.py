"""Usage pages: a variable's Usage tab (resolutions per label over time, the configured rollout beside the observed
split, last evaluated, reporting processes, where code defines it) and the project's stale variables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from setpoint._server.api.deps import server_state
from setpoint._server.services import catalog
from setpoint._server.services.usage import refs, report
from setpoint._server.storage.usage import hour_start
from setpoint._server.web.render import Page, page
from setpoint._server.web.usage_chart import build_chart

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}


def _usage_page(current: Page, name: str, span: str) -> Response:
    record = catalog.get_record(current.ctx, current.project.id, name)
    now = datetime.now(UTC)
    end = hour_start(now) + timedelta(hours=1)
    series = report.usage_series(current.ctx, current.project.id, name, end - RANGES[span], end, now)
    rollout = {str(k): float(v) for k, v in (record.fields.rollout.get("labels") or {}).items()}
    settings = server_state(current.request).settings
    overview = report.usage_overview(current.ctx, current.project.id, now).get(name)
    return current.render(
        "variable_usage.html",
        variable=record,
        tab="usage",
        nav="variables",
        series=series,
        chart=build_chart(series, rollout),
        span=span,
        spans=list(RANGES),
        stale=report.stale_reason(record, overview, now, settings.stale_days),
        code_refs=refs.list_refs(current.ctx, current.project.id, name),
        has_overrides=bool(record.fields.overrides),
    )


@router.get("/p/{project}/variables/{name}/usage")
async def usage_tab(current: Current, name: str, span: str = "7d") -> Response:
    """The Usage tab."""
    return await run_in_threadpool(_usage_page, current, name, span if span in RANGES else "7d")


def _stale_page(current: Page) -> Response:
    settings = server_state(current.request).settings
    found = report.stale_variables(current.ctx, current.project.id, settings.stale_days)
    return current.render("stale.html", rows=found, stale_days=settings.stale_days, nav="variables")


@router.get("/p/{project}/stale")
async def stale(current: Current) -> Response:
    """Variables nobody evaluated lately, or that serve one label to everyone: candidates for removal."""
    return await run_in_threadpool(_stale_page, current)
