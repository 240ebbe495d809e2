"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from setpoint._server.api.deps import server_state

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ok while the process runs (no database access)."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers and its schema is current")
async def readyz(request: Request) -> JSONResponse:
    """503 with the reason when the database is unreachable or not migrated."""
    storage = server_state(request).storage
    try:
        await run_in_threadpool(storage.ping)
        migrated = await run_in_threadpool(storage.is_migrated)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "detail": f"database unreachable: {exc}"}, status_code=503)
    if not migrated:
        detail = "database schema is not current; run `setpoint migrate`"
        return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
    return JSONResponse({"status": "ok", "database": storage.dialect})
