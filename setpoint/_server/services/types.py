"""Variable types: named JSON schemas shared by variables (``/v1/variable-types/``)."""

from __future__ import annotations

from typing import Any

from setpoint._server.services import audit
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.models import VariableTypeIn
from setpoint._server.services.validation import check_json_schema
from setpoint._server.storage.records import VariableType


def type_json(vtype: VariableType) -> dict[str, Any]:
    """A variable type as the Logfire SDK reads it."""
    return {
        "name": vtype.name,
        "json_schema": vtype.json_schema,
        "description": vtype.description,
        "source_hint": vtype.source_hint,
        "created_at": vtype.created_at.isoformat(),
        "updated_at": vtype.updated_at.isoformat(),
    }


def list_types(ctx: ServiceContext, project_id: int) -> list[VariableType]:
    """A project's variable types, by name."""
    with ctx.storage.read() as tx:
        return tx.list_types(project_id)


def upsert_type(ctx: ServiceContext, project_id: int, body: VariableTypeIn, actor: str) -> tuple[VariableType, bool]:
    """Create or replace a type by name; returns the type and whether it was created."""
    check_json_schema(body.json_schema, "json_schema")
    with ctx.storage.write() as tx:
        new, previous = tx.upsert_type(project_id, body.name, body.json_schema, body.description, body.source_hint)
        before = None if previous is None else type_json(previous)
        action = "create" if previous is None else "update"
        audit.record(tx, project_id, actor, action, "type", body.name, before, type_json(new))
        change = Change(project_id, "type", "created" if previous is None else "updated", body.name)
        ctx.sink.record(tx, change)
    ctx.sink.applied(change)
    return new, previous is None
