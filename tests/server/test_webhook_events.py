"""Which audit entries are which webhook events, and the payloads (pure functions: no server needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from setpoint._server.services.webhooks import events, signing

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _types(entity_type: str, action: str, name: str, before: object, after: object) -> list[str]:
    return [t for t, _ in events.events_for(entity_type, action, name, before, after)]


def test_variable_entries() -> None:
    prod1: dict[str, Any] = {"version": 1, "serialized_value": "1"}
    prod2: dict[str, Any] = {"version": 2, "serialized_value": "2"}
    v1: dict[str, Any] = {"name": "flag", "labels": {"production": prod1}}
    v2: dict[str, Any] = {"name": "flag", "labels": {"production": prod2}}
    assert _types("variable", "create", "flag", None, v1) == ["variable.created"]
    assert _types("variable", "delete", "flag", v1, None) == ["variable.deleted"]
    assert _types("variable", "update", "flag", v1, {**v1, "description": "x"}) == ["variable.updated"]
    assert _types("variable", "move_label", "flag", v1, v2) == ["variable.updated", "label.moved"]
    [(_, extra)] = [e for e in events.events_for("variable", "move_label", "flag", v1, v2) if e[0] == "label.moved"]
    assert extra == {"labels": {"production": {"before": prod1, "after": prod2}}}
    # A new label and a removed one are moves too.
    added = {"name": "flag", "labels": {"production": prod1, "beta": {"version": None, "ref": "latest"}}}
    assert dict(events.events_for("variable", "set_label", "flag", v1, added))["label.moved"]["labels"] == {
        "beta": {"before": None, "after": {"version": None, "ref": "latest"}}
    }
    # A rename is audited under both names: one event, under the new name.
    renamed = {**v1, "name": "flag2"}
    assert _types("variable", "rename", "flag", v1, renamed) == []
    assert _types("variable", "rename", "flag2", v1, renamed) == ["variable.updated"]


def test_segments_and_the_other_helpers_entries() -> None:
    assert _types("segment", "create", "beta", None, {"key": "beta"}) == ["segment.created"]
    assert _types("segment", "restore", "beta", {"key": "beta"}, {"key": "beta", "x": 1}) == ["segment.updated"]
    assert _types("segment", "delete", "beta", {"key": "beta"}, None) == ["segment.deleted"]
    for action in ("opened", "approved", "rejected", "applied"):
        assert _types("change_request", action, "flag", None, {"id": 1}) == [f"change_request.{action}"]
    for action in ("stale", "commented", "withdrawn"):
        assert _types("change_request", action, "flag", None, {"id": 1}) == []
    for action in ("started", "step", "completed", "aborted"):
        assert _types("rollout", action, "flag", None, {"id": 1}) == [f"rollout.{action}"]
    assert _types("rollout", "paused", "flag", None, {"id": 1}) == []
    assert _types("schedule", "ran", "flag", None, {"id": 1}) == ["schedule.ran"]
    assert _types("schedule", "scheduled", "flag", None, {"id": 1}) == []
    for entity in ("api_key", "membership", "person", "project", "type", "webhook", "session"):
        assert _types(entity, "create", "x", None, {"id": 1}) == []
    every = {t for e in ("variable", "segment") for t in ("created", "updated", "deleted")}
    assert {f"{e}" for e in every} <= {t.split(".")[1] for t in events.EVENT_TYPES}


def test_standard_and_slack_bodies() -> None:
    data = events.event_data(
        "shop", "user:1:Alice", "step", "rollout", "flag", None, {"step": 2, "steps": 5, "id": 3}, {}
    )
    standard = json.loads(events.body("standard", "rollout.step", AT, data))
    assert standard == {"type": "rollout.step", "timestamp": "2026-11-30T12:00:00+00:00", "data": data}
    assert data["actor"] == "Alice"
    slack = json.loads(events.body("slack", "rollout.step", AT, data))
    assert slack["text"] == "Rollout of `flag` in *shop*: step (step 2 of 5)"
    assert [b["type"] for b in slack["blocks"]] == ["section", "context"]
    request = events.event_data("shop", "user:1:Alice", "approved", "change_request", "flag", None, {"title": "v2"}, {})
    assert json.loads(events.slack_body("change_request.approved", AT, request))["text"] == (
        "Alice: change request “v2” for `flag` approved in *shop*"
    )


def test_signature_is_what_standardwebhooks_verifies() -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secret = signing.generate_secret()
    assert secret.startswith("whsec_") and secret != signing.generate_secret()
    body = '{"type": "webhook.test"}'
    now = int(datetime.now(UTC).timestamp())
    headers = signing.headers(secret, "msg_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "webhook.test"}
    forged = {**headers, "webhook-signature": signing.sign(signing.generate_secret(), "msg_1", now, body)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, forged)
