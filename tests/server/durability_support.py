"""Helpers of the backup/restore and copy-data tests: run the data commands, dump every table, make history."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from setpoint._cli import data as data_cli
from setpoint._cli import migrate as migrate_cli
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import open_storage
from setpoint._server.storage.schema import metadata
from tests.server.support import CLI, Project, ServerProcess, make_project, subprocess_env


@dataclass(frozen=True)
class Ran:
    """How a command ended."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Ran:
    """Run ``setpoint ARGS`` (the data commands) in this process, as Typer parses and runs them."""
    app = typer.Typer()
    data_cli.register(app)
    app.command("migrate")(migrate_cli.migrate)
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def run_cli_process(*args: str, timeout: float = 120) -> Ran:
    """Run ``setpoint ARGS`` of this checkout in a child process (the installed entry point's path)."""
    done = subprocess.run([*CLI, *args], env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    return Ran(done.returncode, done.stdout, done.stderr)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    return value


def dump_tables(url: str, names: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every row of every schema table (or of ``names``), in id order, timestamps as UTC ISO text."""
    storage = open_storage(url)
    try:
        with storage.engine.connect() as conn:
            dump = {}
            for table in metadata.sorted_tables:
                if names is not None and table.name not in names:
                    continue
                rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings()
                dump[table.name] = [{key: _plain(value) for key, value in row.items()} for row in rows]
            return dump
    finally:
        storage.dispose()


def new_project(database_url: str) -> Project:
    """A project with a read,write and a read-only key, made through the services."""
    storage = open_storage(database_url)
    try:
        return make_project(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")))
    finally:
        storage.dispose()


def login_session(database_url: str, password: str) -> str:
    """A web session token for the admin (a row in ``sessions``)."""
    from setpoint._server.web.session import login

    storage = open_storage(database_url)
    try:
        token = login(ServiceContext(storage=storage, sink=ChangeSink(origin="tests")), "admin", password)
    finally:
        storage.dispose()
    assert token is not None
    return token


SEGMENT = {"key": "pro", "name": "Pro", "rules": [{"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}]}]}


def make_history(server: ServerProcess, project: Project) -> dict[str, Any]:
    """Types, a segment, variables with several versions, label moves, targeting and keys (one revoked).

    Returns what later checks need: the keys by role and the names of the variables.
    """
    with server.client(project) as api:
        api.post("/v1/variable-types/", json={"name": "Greeting", "json_schema": {"type": "string"}}).raise_for_status()
        api.post("/v1/segments/", json=SEGMENT).raise_for_status()
        greeting = {
            "name": "greeting",
            "type_name": "Greeting",
            "description": "what the app says",
            "labels": {
                "prod": {"target_type": "version", "serialized_value": '"hello"'},
                "vip": {"target_type": "version", "serialized_value": '"welcome, pro"'},
            },
            "rollout": {"labels": {"prod": 1.0}},
            "overrides": [
                {"conditions": [{"kind": "in-segment", "segment": "pro"}], "rollout": {"labels": {"vip": 1.0}}}
            ],
        }
        api.post("/v1/variables/", json=greeting).raise_for_status()
        for n in range(3):
            body = {"value": f"hello #{n}", "description": f"edit {n}", "label": "prod"}
            api.post("/v1/variables/greeting/versions/", json=body).raise_for_status()
        api.put("/v1/variables/greeting/labels/prod/", json={"target_type": "version", "version": 3}).raise_for_status()
        ratio = {
            "name": "ratio",
            "json_schema": {"type": "number"},
            "labels": {"a": {"target_type": "version", "serialized_value": "0.25"}},
            "rollout": {"labels": {"a": 1.0}},
        }
        api.post("/v1/variables/", json=ratio).raise_for_status()
        api.post("/v1/variables/ratio/versions/", json={"value": 0.5, "label": "a"}).raise_for_status()
        api.post("/v1/variables/ratio/versions/1/restore/", json={"label": "a"}).raise_for_status()
        gone = api.post("/v1/variables/", json={"name": "gone", "labels": {}})
        gone.raise_for_status()
        api.delete("/v1/variables/gone/").raise_for_status()
        created = api.post("/v1/api-keys/", json={"name": "to revoke", "scopes": ["read"]})
        created.raise_for_status()
        revoked = created.json()
        api.delete(f"/v1/api-keys/{revoked['id']}/").raise_for_status()
    return {"revoked_key": revoked["key"]}


def served(server: ServerProcess, project: Project) -> dict[str, Any]:
    """Every read answer of the project that a move must keep (bodies, and the config's ETag)."""
    out: dict[str, Any] = {}
    with server.client(project) as api:
        config = api.get("/v1/variables/")
        config.raise_for_status()
        out["config"] = config.json()
        out["etag"] = config.headers["etag"]
        for path in ("/v1/variable-types/", "/v1/segments/", "/v1/segments/pro/history/", "/v1/audit/"):
            out[path] = api.get(path).json()
        for name in ("greeting", "ratio"):
            for what in ("versions", "history", "label-history"):
                path = f"/v1/variables/{name}/{what}/"
                response = api.get(path)
                response.raise_for_status()
                out[path] = response.json()
        keys = api.get("/v1/api-keys/").json()
        out["keys"] = [{k: v for k, v in key.items() if k != "last_used_at"} for key in keys]
    return out


@contextmanager
def extra_postgres_database(server_url: str) -> Iterator[str]:
    """Another throwaway PostgreSQL database (for a restore target); its URL."""
    import psycopg
    from psycopg import sql

    name = f"setpoint_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def is_login_redirect(response: httpx.Response) -> bool:
    """Whether a web page answered by sending the browser to the login page."""
    return response.status_code in (302, 303, 307) and "/login" in response.headers.get("location", "")
