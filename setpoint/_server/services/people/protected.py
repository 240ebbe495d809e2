"""Protected labels: a project setting (default ``["production"]``). Only an ``admin`` may move such a label,
or change targeting (rollout, override rules) that serves it before or after the change.

The check runs inside the write transaction of every variable change (from :func:`audit.record`, the one
path every change of a variable takes), so the API, the Logfire-compatible endpoints and the web UI obey it
alike, and the role is the person's role at that moment.

A segment is part of the override rules that name it, so changing who is in a segment (:func:`check_segment`,
also called from :func:`audit.record` for every segment change) is a protected change when a variable whose
overrides use it (directly or through segments that include it) serves a protected label: as with editing
those rules on the variable, every label the variable's targeting serves counts, because who matches one rule
decides who falls through to the next rules and the rollout.
"""

from __future__ import annotations

import json
from typing import Any

from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, ForbiddenError, InvalidError
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


AUDIENCE_NEUTRAL = frozenset({"name", "description", "tags", "created_at"})
"""Segment fields that do not change who is in the segment: editors may always change them."""


def _audience(segment: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in segment.items() if k not in AUDIENCE_NEUTRAL}, sort_keys=True)


def segment_users(tx: ReadTx, project_id: int, key: str) -> list[str]:
    """The variables whose override rules name segment ``key``, directly or through segments that include it
    (``segmentMatch``), sorted. Reads only the rows that mention the segments on the way
    (`ReadTx.segment_referrers`, as the delete check does)."""
    variables: set[str] = set()
    seen = {key}
    stack = [key]
    while stack:
        names, segments = tx.segment_referrers(project_id, stack.pop())
        variables.update(names)
        fresh = [s for s in segments if s not in seen]
        seen.update(fresh)
        stack.extend(fresh)
    return sorted(variables)


def segment_touched(tx: ReadTx, project_id: int, protected: tuple[str, ...], key: str) -> dict[str, list[str]]:
    """``{variable: protected labels its targeting serves}`` for the variables that use segment ``key``."""
    hit: dict[str, list[str]] = {}
    for name, targeting in sorted(tx.variables_targeting(project_id, segment_users(tx, project_id, key)).items()):
        labels = sorted(set(protected) & _served(targeting))
        if labels:
            hit[name] = labels
    return hit


def check_segment(tx: ReadTx, project_id: int, actor: str, key: str, before: Any, after: Any) -> None:
    """Refuse a non-admin's change of who is in segment ``key`` when a variable using it serves a protected label:
    403 naming the segment, the variables and the labels; 409 when the project reviews protected changes
    (segments have no change requests, so only an admin can make such a change).

    Creating a segment (nothing uses it yet) and deleting one (refused while used) pass; so does a change of its
    name, description or tags only."""
    from setpoint._server.services.people.service import actor_role
    from setpoint._server.storage import change_requests as review_store

    if not isinstance(before, dict) or not isinstance(after, dict) or _audience(before) == _audience(after):
        return
    project = tx.get_project_by_id(project_id)
    if project is None or not project.protected_labels:
        return
    role = actor_role(tx, project_id, actor)
    if allows(role, ADMIN):
        return
    hit = segment_touched(tx, project_id, project.protected_labels, key)
    if not hit:
        return
    names = ", ".join(repr(v) for v in hit)
    labels = ", ".join(repr(label) for label in sorted({label for ls in hit.values() for label in ls}))
    held = f"the {role} role" if role else "no role"
    if review_store.get_settings(tx, project_id).enabled:
        raise ConflictError(
            f"this change of segment {key!r} touches protected targeting through variable(s) {names} (protected "
            f"label(s) {labels} in project {project.name!r}), and the project reviews such changes; segments have "
            f"no change requests, so it needs an admin to make it; {actors.display(actor)} has {held}",
            errors=[{"segment": key, "variables": list(hit), "labels": hit}],
        )
    raise ForbiddenError(
        f"segment {key!r} decides who gets protected label(s) {labels} in project {project.name!r} through "
        f"variable(s) {names}: changing who is in it needs the admin role; {actors.display(actor)} has {held}",
        errors=[{"segment": key, "variables": list(hit), "labels": hit}],
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
