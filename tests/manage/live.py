"""A real Setpoint server (API + web UI) on a free port, in a thread of the test process, on a temporary
SQLite database, with a known admin password."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from setpoint._server.app import create_app
from setpoint._server.services.bootstrap import bootstrap
from setpoint._server.services.context import ServiceContext
from setpoint._server.settings import Settings
from setpoint._server.web import install
from tests.server.support import free_port

ADMIN_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class LiveServer:
    """A running server: its base URL, its app and the service context its storage is reached through."""

    url: str
    app: FastAPI
    ctx: ServiceContext
    admin_password: str


@contextmanager
def live_server(data_dir: Path, admin_password: str = ADMIN_PASSWORD, **overrides: Any) -> Iterator[LiveServer]:
    """Serve until the block ends (``overrides``: other :class:`Settings` fields)."""
    port = free_port()
    settings = Settings(host="127.0.0.1", port=port, data_dir=data_dir, admin_password=admin_password, **overrides)
    app = create_app(settings)
    install(app)
    ctx: ServiceContext = app.state.setpoint.ctx
    bootstrap(ctx, admin_password)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="setpoint-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", app=app, ctx=ctx, admin_password=admin_password)
    finally:
        server.should_exit = True
        thread.join(15)
        app.state.setpoint.storage.dispose()
