"""The Targeting tab's form parsing (every condition kind) and the value box of text variables."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from setpoint._server.services.errors import InvalidError
from setpoint._server.web import targeting_form
from setpoint.config import CONDITION_KINDS, RolloutOverride
from tests.manage.live import LiveServer
from tests.web.test_sessions import _login

OPERANDS: dict[str, str] = {
    "value": "42",
    "values": "eu, us",
    "pattern": "^a.*z$",
    "segment": "beta",
}


def _cond(kind: str) -> list[tuple[str, str]]:
    field = targeting_form.operand_field(kind)
    operand = OPERANDS[field] if field in ("value", "values", "pattern") else ""
    if kind.startswith("value-semver"):
        operand = "1.2.3"
    if kind in ("value-before", "value-after"):
        operand = "2030-01-01T00:00:00Z"
    return [
        ("cond_negate", "no"),
        ("cond_attribute", "attr"),
        ("cond_kind", kind),
        ("cond_operand", operand),
        ("cond_segment", "beta" if field == "segment" else ""),
    ]


@pytest.mark.parametrize("kind", sorted(CONDITION_KINDS))
def test_every_condition_kind_parses_into_a_valid_condition(kind: str) -> None:
    items = [("weight:a", "90"), ("weight:b", "10"), ("rule", "1"), ("rule_weight:b", "100"), *_cond(kind)]
    rollout, overrides = targeting_form.parse(items)
    assert rollout == {"labels": {"a": 0.9, "b": 0.1}}
    assert len(overrides) == 1
    condition = overrides[0]["conditions"][0]
    assert condition["kind"] == kind
    RolloutOverride.model_validate(overrides[0])
    assert targeting_form.operand_text(condition) in (
        OPERANDS.get(targeting_form.operand_field(kind) or "", ""),
        "",
        "1.2.3",
        "2030-01-01T00:00:00Z",
    )


def test_values_are_typed_and_rules_keep_document_order() -> None:
    items: list[tuple[str, Any]] = [
        ("rule", "1"),
        ("cond_negate", "yes"),
        ("cond_attribute", "seats"),
        ("cond_kind", "value-is-in"),
        ("cond_operand", '1, true, "2", text'),
        ("cond_segment", ""),
        ("rule", "1"),
        ("cond_negate", "no"),
        ("cond_attribute", "plan"),
        ("cond_kind", "value-equals"),
        ("cond_operand", "enterprise"),
        ("cond_segment", ""),
        ("rule_weight:a", "12.5"),
    ]
    _, overrides = targeting_form.parse(items)
    assert overrides[0]["conditions"] == [
        {"kind": "value-is-in", "attribute": "seats", "values": [1, True, "2", "text"], "negate": True}
    ]
    assert overrides[1]["conditions"] == [{"kind": "value-equals", "attribute": "plan", "value": "enterprise"}]
    assert overrides[1]["rollout"] == {"labels": {"a": 0.125}}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([("weight:a", "ten")], "not a percentage"),
        ([("rule", "1"), *_cond("value-greater-than")[:3], ("cond_operand", "lots")], "not a number"),
        ([("rule", "1"), ("cond_negate", "no"), ("cond_attribute", ""), ("cond_kind", "value-equals")], "attribute"),
        ([("rule", "1"), ("cond_negate", "no"), ("cond_kind", "in-segment"), ("cond_segment", "")], "segment"),
        ([("rule", "1"), ("cond_negate", "no"), ("cond_kind", "value-shouts")], "unknown condition kind"),
    ],
)
def test_form_mistakes_are_explained(items: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidError, match=message):
        targeting_form.parse(items)


def test_text_variables_take_plain_text(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as http:
        _login(http, live.admin_password)
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/p/default/variables").text)
        assert token is not None
        csrf = token.group(1)
        created = http.post("/p/default/variables/new", data={"name": "greeting", "kind": "text", "csrf_token": csrf})
        assert created.status_code == 303
        saved = http.post(
            "/p/default/variables/greeting/versions",
            data={"value": 'Hello "friend"', "revision": "1", "csrf_token": csrf, "new_label": "production"},
        )
        assert saved.status_code == 303
        headers = {"X-CSRF-Token": csrf}
        checked = http.post("/p/default/variables/greeting/validate", json={"value": "{"}, headers=headers)
        assert checked.json() == {"valid": True, "errors": []}
    with live.ctx.storage.read() as tx:
        project = tx.get_project("default")
        assert project is not None
        variable = tx.get_variable(project.id, "greeting")
        assert variable is not None
        version = tx.get_version(variable.id, 1)
    assert version is not None
    assert json.loads(version.serialized_value) == 'Hello "friend"'
