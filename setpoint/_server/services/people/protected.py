"""Protected labels: a project setting (default ``["production"]``). Only an ``admin`` may move such a label,
or change targeting (rollout, override rules) that serves it before or after the change.

The check runs inside the write transaction of every variable change (from :func:`audit.record`, the one
path every change of a variable takes), so the API, the Logfire-compatible endpoints and the web UI obey it
alike, and the role is the person's role at that moment.
"""

from __future__ import annotations

import json
from typing import Any

from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ForbiddenError, InvalidError
from setpoint._server.services.people import actors
from setpoint._server.services.people.roles import ADMIN, allows
from setpoint._server.storage import ReadTx, WriteTx

MAX_PROTECTED = 50


def _labels(wire: dict[str, Any] | None) -> dict[str, Any]:
    labels = (wire or {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def _served(wire: dict[str, Any] | None) -> set[str]:
    """Labels the rollout or an override rule can serve."""
    if not wire:
        return set()
    served = set(((wire.get("rollout") or {}).get("labels") or {}).keys())
    for override in wire.get("overrides") or []:
        served |= set(((override.get("rollout") or {}).get("labels") or {}).keys())
    return served


def _targeting(wire: dict[str, Any] | None) -> str:
    if not wire:
        return ""
    return json.dumps([wire.get("rollout"), wire.get("overrides")], sort_keys=True)


def touched(protected: tuple[str, ...], before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The protected labels a change moves, or whose serving targeting it changes."""
    if not protected:
        return []
    old, new = _labels(before), _labels(after)
    hit = {label for label in protected if old.get(label) != new.get(label)}
    if _targeting(before) != _targeting(after):
        hit |= set(protected) & (_served(before) | _served(after))
    return sorted(hit)


def check(tx: ReadTx, project_id: int, actor: str, before: Any, after: Any) -> None:
    """403 when ``actor`` is not an admin and the change touches a protected label."""
    from setpoint._server.services.people.service import actor_role

    project = tx.get_project_by_id(project_id)
    if project is None or not project.protected_labels:
        return
    hit = touched(
        project.protected_labels,
        before if isinstance(before, dict) else None,
        after if isinstance(after, dict) else None,
    )
    if not hit:
        return
    role = actor_role(tx, project_id, actor)
    if not allows(role, ADMIN):
        names = ", ".join(repr(h) for h in hit)
        held = f"the {role} role" if role else "no role"
        raise ForbiddenError(
            f"label(s) {names} are protected in project {project.name!r}: moving them or changing the targeting "
            f"that serves them needs the admin role; {actors.display(actor)} has {held}"
        )


def parse(text: str | list[str]) -> tuple[str, ...]:
    """Protected labels from ``"production, staging"`` or a list; 422 on a bad name."""
    from setpoint._server.services.editing import check_label_name

    items = text.split(",") if isinstance(text, str) else text
    labels = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    if len(labels) > MAX_PROTECTED:
        raise InvalidError(f"at most {MAX_PROTECTED} protected labels")
    for label in labels:
        check_label_name(label)
    return labels


def set_protected(ctx: ServiceContext, project_id: int, labels: tuple[str, ...], actor: str) -> tuple[str, ...]:
    """Replace a project's protected labels (an admin setting; audited)."""
    with ctx.storage.write() as tx:
        _set(tx, project_id, labels, actor)
    return labels


def _set(tx: WriteTx, project_id: int, labels: tuple[str, ...], actor: str) -> None:
    from setpoint._server.services import audit

    project = tx.get_project_by_id(project_id)
    before = None if project is None else list(project.protected_labels)
    tx.set_protected_labels(project_id, labels)
    audit.record(
        tx, project_id, actor, "set_protected_labels", "project", project.name if project else "", before, list(labels)
    )
