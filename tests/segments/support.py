"""Helpers of the segments, OFREP and OpenFeature tests: an in-process app with a project and keys."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from setpoint._server.app import create_app
from setpoint._server.services.context import ServiceContext
from setpoint._server.settings import Settings
from setpoint.config import VariablesConfig
from tests.server.support import Project, free_port, make_project


def mount(app: FastAPI) -> FastAPI:
    """Include the segments and OFREP routers unless the app already has them."""
    from setpoint._server.api import ofrep, segments, segments_ld

    paths = {getattr(route, "path", "") for route in app.routes}
    for module, probe in ((segments, "/v1/segments/"), (segments_ld, "/api/v2/segments/{project}/{environment}")):
        if probe not in paths:
            app.include_router(module.router)
    if "/ofrep/v1/evaluate/flags" not in paths:
        app.include_router(ofrep.router)
    return app


@dataclass
class App:
    """A server running in this process (uvicorn in a thread), its services and one project with keys."""

    url: str
    client: httpx.Client
    ctx: ServiceContext
    project: Project

    def other_project(self) -> Project:
        """Another project on the same server."""
        return make_project(self.ctx)


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="setpoint-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.setpoint.hub.close()
        server.should_exit = True
        thread.join(20)


@contextmanager
def running_app(tmp_path: Path, database_url: str | None = None) -> Iterator[App]:
    """A migrated app on ``database_url`` (default: a fresh SQLite file), served over HTTP, with a project."""
    # A short keep-alive: an SDK's update stream notices a shutdown at the next keep-alive at the latest.
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url or f"sqlite:///{tmp_path / 'db.sqlite'}",
        sse_keepalive_seconds=1.0,
    )
    app = mount(create_app(settings))
    ctx: ServiceContext = app.state.setpoint.ctx
    project = make_project(ctx)
    try:
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield App(url=url, client=client, ctx=ctx, project=project)
    finally:
        app.state.setpoint.storage.dispose()


SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"


def ld_url(project: Project, key: str | None = None, environment: str = "production") -> str:
    """The URL of the LaunchDarkly-shaped segments API for a project (and one segment)."""
    base = f"/api/v2/segments/{project.name}/{environment}"
    return base if key is None else f"{base}/{key}"


def ld_create(app: App, project: Project, key: str, **fields: object) -> httpx.Response:
    """``POST`` a segment (name defaults to the key) with the key in the bare ``Authorization`` header."""
    body = {"key": key, "name": fields.pop("name", key), **fields}
    return app.client.post(ld_url(project), json=body, headers={"Authorization": project.rw_key})


def ld_patch(app: App, project: Project, key: str, instructions: Sequence[Mapping[str, Any]]) -> httpx.Response:
    """A semantic-patch ``PATCH`` of a segment."""
    body = {"environmentKey": "production", "instructions": instructions}
    headers = {"Authorization": project.rw_key, "Content-Type": SEMANTIC_PATCH}
    return app.client.patch(ld_url(project, key), content=json.dumps(body), headers=headers)


def served_config(app: App, project: Project) -> VariablesConfig:
    """The project's config as the server serves it."""
    response = app.client.get("/v1/variables/", headers=project.headers())
    response.raise_for_status()
    return VariablesConfig.model_validate_json(response.content)


def create_variable(
    app: App,
    project: Project,
    name: str,
    values: Mapping[str, Any],
    rollout: Mapping[str, float],
    overrides: Sequence[tuple[list[dict[str, Any]], Mapping[str, float]]] = (),
) -> None:
    """Create a variable whose labels carry ``values`` (JSON-encoded here), a rollout and overrides."""
    body = {
        "name": name,
        "labels": {
            label: {"target_type": "version", "serialized_value": json.dumps(value)} for label, value in values.items()
        },
        "rollout": {"labels": dict(rollout)},
        "overrides": [{"conditions": c, "rollout": {"labels": dict(r)}} for c, r in overrides],
    }
    response = app.client.post("/v1/variables/", json=body, headers=project.headers())
    assert response.status_code == 201, response.text
