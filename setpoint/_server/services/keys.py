"""Projects and API keys: keys belong to one project and to the person who made them (None: the operator,
``setpoint keys create``), carry scopes, are shown once and stored hashed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from setpoint._server.security import display_prefix, generate_api_key, hash_token
from setpoint._server.services import audit
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import InvalidError, NotFoundError
from setpoint._server.storage.records import ApiKey, Project

READ_EXTERNAL = "read_external"
SCOPES = frozenset({"read", "write", READ_EXTERNAL})
"""``read``: the whole config (SDK pull, OFREP, management reads); ``write``: changes; ``read_external``: OFREP
evaluation of external variables only (for client-side apps), every other endpoint refuses it."""
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``token`` is the only time the secret exists outside the caller's hands."""

    token: str
    key: ApiKey
    project: Project


def parse_scopes(text: str | list[str]) -> frozenset[str]:
    """``"read,write"`` (or a list) to a scope set; 422 naming the allowed scopes otherwise."""
    items = text.split(",") if isinstance(text, str) else text
    scopes = frozenset(s.strip().lower() for s in items if s.strip())
    unknown = sorted(scopes - SCOPES)
    if unknown or not scopes:
        raise InvalidError(
            f"unknown or missing scopes {unknown or items!r}; use a comma-separated subset of read,write,read_external"
        )
    return scopes


def grantable(scopes: frozenset[str]) -> frozenset[str]:
    """The scopes a key with ``scopes`` may give a new key: its own, and ``read_external`` if it can ``read``."""
    return scopes | {READ_EXTERNAL} if "read" in scopes else scopes


def check_project_name(name: str) -> None:
    """Project names: letters, digits, '.', '_' and '-', up to 100 characters."""
    if not _PROJECT_NAME.match(name):
        raise InvalidError(
            f"project name {name!r} is invalid: use up to 100 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )


def get_project(ctx: ServiceContext, name: str) -> Project:
    """A project by name; 404 when missing."""
    with ctx.storage.read() as tx:
        project = tx.get_project(name)
    if project is None:
        raise NotFoundError(f"project {name!r} does not exist")
    return project


def ensure_project(ctx: ServiceContext, name: str, actor: str) -> Project:
    """The project called ``name``, created if missing."""
    check_project_name(name)
    with ctx.storage.write() as tx:
        project, created = tx.ensure_project(name)
        if created:
            audit.record(tx, project.id, actor, "create", "project", name, None, {"name": name})
    return project


def create_key(
    ctx: ServiceContext,
    project_name: str,
    scopes: frozenset[str],
    actor: str,
    *,
    name: str = "",
    create_project: bool = True,
    user_id: int | None = None,
) -> CreatedKey:
    """Create a key for a project (creating the project when allowed); the token is returned only here."""
    check_project_name(project_name)
    token = generate_api_key()
    with ctx.storage.write() as tx:
        project = tx.get_project(project_name)
        if project is None:
            if not create_project:
                raise NotFoundError(f"project {project_name!r} does not exist")
            project = tx.create_project(project_name)
            audit.record(tx, project.id, actor, "create", "project", project_name, None, {"name": project_name})
        key = tx.insert_api_key(
            project.id,
            name or f"key {display_prefix(token)}",
            display_prefix(token),
            hash_token(token),
            scopes,
            actor,
            user_id,
        )
        audit.record(tx, project.id, actor, "create", "api_key", key.name, None, key_json(key))
    return CreatedKey(token=token, key=key, project=project)


def revoke_key(ctx: ServiceContext, project_id: int, key_id: int, actor: str) -> ApiKey:
    """Revoke a key of this project; every server process stops accepting it."""
    with ctx.storage.write() as tx:
        key = tx.revoke_api_key(project_id, key_id)
        if key is None:
            raise NotFoundError(f"API key {key_id} does not exist in this project")
        audit.record(tx, project_id, actor, "revoke", "api_key", key.name, None, key_json(key))
        change = Change(project_id, "api_key", "deleted", key.key_hash)
        ctx.sink.record(tx, change)
    ctx.sink.applied(change)
    return key


def list_keys(ctx: ServiceContext, project_id: int) -> list[ApiKey]:
    """A project's keys (never their secrets)."""
    with ctx.storage.read() as tx:
        return tx.list_api_keys(project_id)


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key's public description."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": sorted(key.scopes),
        "created_by": key.created_by,
        "user_id": key.user_id,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
        "last_used_at": None if key.last_used_at is None else key.last_used_at.isoformat(),
    }
