"""The audit history: every change with who, when, and the JSON before and after."""

from __future__ import annotations

from typing import Any

from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import WriteTx
from setpoint._server.storage.records import AuditEntry


def record(
    tx: WriteTx, project_id: int, actor: str, action: str, entity_type: str, name: str, before: Any, after: Any
) -> None:
    """Append one audit entry inside the write transaction that made the change."""
    tx.add_audit(project_id, actor, action, entity_type, name, before, after)


def history(
    ctx: ServiceContext, project_id: int, *, entity_type: str | None = None, name: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """Audit entries of a project (optionally one entity's), newest first."""
    with ctx.storage.read() as tx:
        return tx.list_audit(project_id, entity_type=entity_type, entity_name=name, limit=limit)


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as JSON."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_name": entry.entity_name,
        "before": entry.before,
        "after": entry.after,
    }
