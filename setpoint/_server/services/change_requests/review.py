"""Whether a variable change needs review, and the exact diff a request stores.

`check` runs inside the write transaction of every variable change (called by `audit.record`, the one path
every change takes, before the protected-label check), so the API, the Logfire-compatible endpoints and the
web UI all obey the project's review settings. A change that needs review raises :class:`ReviewRequired`,
which rolls the transaction back; the app's exception handler then stores the request (`service.open_from`)
and answers 202 with it (the web UI: a redirect to the request's page).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from setpoint._server.services.errors import ConflictError
from setpoint._server.storage import WriteTx

TARGETING_FIELDS = ("labels", "rollout", "overrides")
"""What a request changes; ``latest_version`` also changes when a request's label needs a new version."""

_applying: ContextVar[tuple[int, str] | None] = ContextVar("setpoint_applying_change_request", default=None)


@dataclass
class ReviewRequired(Exception):  # noqa: N818 - a signal, not an error: the change becomes a change request
    """A change that must be reviewed: nothing was applied; ``service.open_from`` stores it as a request."""

    project_id: int
    variable: str
    actor: str
    action: str
    before: dict[str, Any]
    """The targeting state (`state`) the change was computed from: the request's base."""
    diff: dict[str, Any]
    reason: str

    def __str__(self) -> str:
        return f"a change of {self.variable!r} needs review: {self.reason}"


@dataclass
class RequestOpened(Exception):  # noqa: N818 - a signal: answered 202 (API) or with a redirect (web UI)
    """A change request was stored instead of applying a change; ``request`` is its JSON."""

    request: dict[str, Any]
    message: str


@contextmanager
def applying(project_id: int, variable: str) -> Iterator[None]:
    """Within this block, the change of ``variable`` is an approved request being applied: not reviewed again."""
    token = _applying.set((project_id, variable))
    try:
        yield
    finally:
        _applying.reset(token)


def label_state(label: Any) -> dict[str, Any] | None:
    """A label's target as a request stores it: ``{"version", "serialized_value"}`` or ``{"ref"}`` (a ref's
    resolved version is left out: creating a version does not move a label that follows ``latest``)."""
    if not isinstance(label, dict):
        return None
    if label.get("ref") is not None:
        return {"ref": label["ref"]}
    return {"version": label.get("version"), "serialized_value": label.get("serialized_value")}


def state(wire: dict[str, Any] | None) -> dict[str, Any]:
    """The reviewable part of a variable's wire JSON: its rollout, override rules and label targets."""
    wire = wire or {}
    labels = wire.get("labels") or {}
    return {
        "rollout": wire.get("rollout") or {"labels": {}},
        "overrides": list(wire.get("overrides") or []),
        "labels": {name: label_state(value) for name, value in sorted(labels.items())},
    }


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def compute_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changes between two targeting states: ``{"rollout"?, "overrides"?: {"before", "after"}, "labels"?:
    {name: {"before", "after"}}}`` (a label's ``None``: it does not exist)."""
    diff: dict[str, Any] = {}
    for key in ("rollout", "overrides"):
        if not _same(before[key], after[key]):
            diff[key] = {"before": before[key], "after": after[key]}
    labels: dict[str, Any] = {}
    for name in sorted({*before["labels"], *after["labels"]}):
        old, new = before["labels"].get(name), after["labels"].get(name)
        if not _same(old, new):
            labels[name] = {"before": old, "after": new}
    if labels:
        diff["labels"] = labels
    return diff


def touched_labels(diff: dict[str, Any]) -> list[str]:
    """The labels a diff moves, and those served by targeting it changes."""
    names = set(diff.get("labels", {}))
    for key in ("rollout", "overrides"):
        if key in diff:
            for side in ("before", "after"):
                value = diff[key][side]
                rollouts = [value] if key == "rollout" else [(o or {}).get("rollout") or {} for o in value]
                for rollout in rollouts:
                    names |= set((rollout or {}).get("labels") or {})
    return sorted(names)


def other_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Fields of the wire JSON a change touches besides targeting (and the versions its labels need)."""
    keys = {*before, *after} - {*TARGETING_FIELDS, "latest_version"}
    return sorted(k for k in keys if not _same(before.get(k), after.get(k)))


def check(tx: WriteTx, project_id: int, actor: str, action: str, name: str, before: Any, after: Any) -> bool:
    """Called for every variable change inside its transaction. Returns True when the change is an approved
    request being applied (then the protected-label check is skipped: the review replaced it). Raises
    :class:`ReviewRequired` when the change must become a request; records an admin's bypass."""
    from setpoint._server.services.change_requests import service
    from setpoint._server.services.people.roles import ADMIN, allows
    from setpoint._server.services.people.service import actor_role
    from setpoint._server.storage import change_requests as store

    if _applying.get() == (project_id, name):
        return True
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False  # creating and deleting a variable are not reviewed (deleting needs an admin)
    settings = store.get_settings(tx, project_id)
    if not settings.enabled:
        return False
    old, new = state(before), state(after)
    diff = compute_diff(old, new)
    if not diff:
        return False
    reason = "the project reviews every targeting change"
    if not settings.all_targeting:
        project = tx.get_project_by_id(project_id)
        protected = set(project.protected_labels if project else ())
        hit = sorted(protected & set(touched_labels(diff)))
        if not hit:
            return False
        reason = f"it touches protected label(s) {', '.join(repr(h) for h in hit)}"
    role = actor_role(tx, project_id, actor)
    if allows(role, ADMIN) and settings.admins_bypass:
        service.record_bypass(tx, project_id, name, actor, diff)
        return False
    others = other_changes(before, after)
    if others:
        raise ConflictError(
            f"this change of {name!r} needs review ({reason}) and also changes {', '.join(others)}; a change "
            "request carries only labels, rollout and override rules: save the other fields first, then send the "
            "targeting change on its own"
        )
    raise ReviewRequired(project_id, name, actor, action, old, diff, reason)
