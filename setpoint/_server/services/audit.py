"""The audit history: every change with who (the person, and their key), when, and the JSON before and after.

Project entries have a ``project_id``; instance events (people, logins, failed logins) have none.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime
from typing import Any

from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import WriteTx
from setpoint._server.storage.records import AuditEntry

MAX_NAME = 200
MAX_DIFF_LINES = 4000
"""Above this many pretty-printed lines (before + after), `change_lines` names the changed fields instead."""


def record(
    tx: WriteTx,
    project_id: int | None,
    actor: str,
    action: str,
    entity_type: str,
    name: str,
    before: Any,
    after: Any,
) -> None:
    """Append one audit entry inside the write transaction that made the change.

    Every change of a variable or a segment passes here, so this is also where review (change requests) and
    protected labels are enforced (a 403, or a change that needs review, raised here rolls the whole change
    back; for segments, `protected.check_segment`), and where webhook deliveries are queued (the outbox, written
    in this same transaction: a rolled-back change sends nothing)."""
    from setpoint._server.services import webhooks
    from setpoint._server.services.change_requests import review
    from setpoint._server.services.people import actors, protected

    # Review first: a change that needs review becomes a change request instead of a 403; an approved request
    # being applied was reviewed, so the protected-label check does not apply to it.
    if (
        entity_type == "variable"
        and project_id is not None
        and not review.check(tx, project_id, actor, action, name, before, after)
    ):
        protected.check(tx, project_id, actor, before, after)
    if entity_type == "segment" and project_id is not None:
        protected.check_segment(tx, project_id, actor, name, before, after)
    user_id = actors.parse(actor).user_id
    tx.add_audit(project_id, actor[:MAX_NAME], action, entity_type, name[:MAX_NAME], before, after, user_id)
    webhooks.enqueue(tx, project_id, actor, action, entity_type, name, before, after)


def history(
    ctx: ServiceContext, project_id: int, *, entity_type: str | None = None, name: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """Audit entries of a project (optionally one entity's), newest first."""
    with ctx.storage.read() as tx:
        return tx.list_audit(project_id, entity_type=entity_type, entity_name=name, limit=limit)


def search(
    ctx: ServiceContext,
    project_id: int | None,
    *,
    user_id: int | None = None,
    variable: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """A project's audit (``None``: the instance events), filtered by person, variable and time, newest first."""
    with ctx.storage.read() as tx:
        return tx.list_audit(
            project_id,
            entity_type="variable" if variable else None,
            entity_name=variable or None,
            user_id=user_id,
            since=since,
            until=until,
            limit=limit,
        )


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as JSON (``who``: the person, or "key X of person Y")."""
    from setpoint._server.services.people import actors

    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "who": actors.display(entry.actor),
        "user_id": entry.user_id,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_name": entry.entity_name,
        "before": entry.before,
        "after": entry.after,
    }


def change_lines(before: Any, after: Any, context: int = 1) -> list[str]:
    """What a change did, as the lines of a unified diff of the pretty-printed JSON before and after (keys
    sorted; a create diffs against nothing, a delete against nothing after)."""

    def lines(value: Any) -> list[str]:
        return [] if value is None else json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    old, new = lines(before), lines(after)
    if len(old) + len(new) > MAX_DIFF_LINES:
        # A huge document (a segment with thousands of keys): difflib's cost grows faster than the input, and a
        # history page shows many entries. Say what changed at the top level instead.
        keys = sorted(
            k
            for k in {*(before or {}), *(after or {})}
            if not isinstance(before, dict)
            or not isinstance(after, dict)
            or json.dumps(before.get(k), sort_keys=True) != json.dumps(after.get(k), sort_keys=True)
        )
        changed = ", ".join(str(k) for k in keys) if isinstance(before, dict) or isinstance(after, dict) else "value"
        return [f"@@ too large to show line by line ({len(old)} -> {len(new)} lines); changed: {changed} @@"]
    diff = difflib.unified_diff(old, new, "before", "after", n=context, lineterm="")
    return [line for line in diff if not line.startswith(("--- ", "+++ "))]
