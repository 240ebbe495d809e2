"""Event types, which audit entries become which events, and the bodies sent (standard JSON or Slack).

Every project change passes ``audit.record``; :func:`events_for` maps its entry to the event types it
stands for (none for entries webhooks do not publish, e.g. API keys or members).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

EVENT_TYPES: tuple[str, ...] = (
    "variable.created",
    "variable.updated",
    "variable.deleted",
    "label.moved",
    "segment.created",
    "segment.updated",
    "segment.deleted",
    "change_request.opened",
    "change_request.approved",
    "change_request.rejected",
    "change_request.applied",
    "rollout.started",
    "rollout.step",
    "rollout.completed",
    "rollout.aborted",
    "schedule.ran",
    "schedule.failed",
)
"""What a webhook can subscribe to."""
TEST_EVENT = "webhook.test"
"""Sent by "send test event" to one webhook, whatever it subscribes to."""
FORMATS = ("standard", "slack")

_PASSED_THROUGH = {
    "change_request": ("opened", "approved", "rejected", "applied"),
    "rollout": ("started", "step", "completed", "aborted"),
    "schedule": ("ran", "failed"),
}
ENTITY_TYPES = frozenset({"variable", "segment", *_PASSED_THROUGH})
"""Audit entity types that can produce events (others are skipped before any database read)."""


def _label_changes(before: Any, after: Any) -> dict[str, dict[str, Any]]:
    old = before.get("labels") or {} if isinstance(before, dict) else {}
    new = after.get("labels") or {} if isinstance(after, dict) else {}
    return {
        name: {"before": old.get(name), "after": new.get(name)}
        for name in sorted({*old, *new})
        if old.get(name) != new.get(name)
    }


def events_for(entity_type: str, action: str, name: str, before: Any, after: Any) -> list[tuple[str, dict[str, Any]]]:
    """The events an audit entry stands for: ``(event type, extra data)`` pairs (``extra`` is merged into
    the event's ``data``; for ``label.moved`` it names the labels that moved)."""
    if entity_type in ("variable", "segment"):
        if action == "rename" and isinstance(after, dict) and after.get("name") != name:
            return []  # a rename is audited under the old and the new name: one event, under the new one
        if action == "create" or (before is None and after is not None):
            return [(f"{entity_type}.created", {})]
        if action == "delete" or after is None:
            return [(f"{entity_type}.deleted", {})]
        found: list[tuple[str, dict[str, Any]]] = [(f"{entity_type}.updated", {})]
        if entity_type == "variable":
            moved = _label_changes(before, after)
            if moved:
                found.append(("label.moved", {"labels": moved}))
        return found
    if action in _PASSED_THROUGH.get(entity_type, ()):
        return [(f"{entity_type}.{action}", {})]
    return []


def event_data(
    project: str, actor: str, action: str, entity_type: str, name: str, before: Any, after: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """The ``data`` of an event: the project, what changed, who changed it, and the JSON before and after."""
    from setpoint._server.services.people import actors

    return {
        "project": project,
        "entity_type": entity_type,
        "name": name,
        "action": action,
        "actor": actors.display(actor),
        **extra,
        "before": before,
        "after": after,
    }


def standard_body(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """The Standard Webhooks JSON body: ``{"type", "timestamp", "data"}``."""
    return json.dumps({"type": event_type, "timestamp": at.isoformat(), "data": data}, ensure_ascii=False)


def _summary(event_type: str, data: dict[str, Any]) -> str:
    who = data.get("actor") or "someone"
    project = data.get("project", "")
    name = data.get("name", "")
    if event_type == TEST_EVENT:
        return f"Test event from Setpoint project *{project}*"
    if event_type == "label.moved":
        moved = ", ".join(f"`{label}`" for label in data.get("labels", {}))
        return f"{who} moved label {moved} of `{name}` in *{project}*"
    kind, _, verb = event_type.partition(".")
    what = {"change_request": "change request", "rollout": "rollout", "schedule": "schedule"}.get(kind, kind)
    after = data.get("after") if isinstance(data.get("after"), dict) else {}
    assert isinstance(after, dict)
    if kind == "rollout" and "step" in after:
        return f"Rollout of `{name}` in *{project}*: {verb} (step {after.get('step')} of {after.get('steps')})"
    if kind in ("rollout", "schedule", "change_request"):
        title = f" “{after['title']}”" if isinstance(after.get("title"), str) else ""
        return f"{who}: {what}{title} for `{name}` {verb} in *{project}*"
    return f"{who} {verb} {what} `{name}` in *{project}*"


def slack_body(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """A Slack incoming-webhook payload: ``text`` (the notification) and ``blocks`` (a section and a
    context line with the event type and time)."""
    text = _summary(event_type, data)
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{event_type}` · {at.isoformat()}"}]},
    ]
    return json.dumps({"text": text, "blocks": blocks}, ensure_ascii=False)


def body(format: str, event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """The body a webhook of ``format`` gets."""
    return slack_body(event_type, at, data) if format == "slack" else standard_body(event_type, at, data)
