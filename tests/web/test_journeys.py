"""The main journeys of the web UI, walked in headless Chromium as a new user would."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
from pydantic import BaseModel

import setpoint
from setpoint._sdk.registry import registered_variables, restore_registry
from setpoint._server.services import keys
from setpoint.config import CONDITION_KINDS, VariablesConfig
from tests.manage.live import LiveServer
from tests.web.conftest import login

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

SCHEMA = {
    "type": "object",
    "properties": {"instructions": {"type": "string"}, "temperature": {"type": "number"}},
    "required": ["instructions"],
}


class AgentConfig(BaseModel):
    instructions: str
    temperature: float = 0.5


def _create_json_variable(page: Page, live: LiveServer, name: str) -> None:
    page.get_by_role("link", name="New variable").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Description").fill("Settings of the support agent")
    page.get_by_label("JSON", exact=True).check()
    page.get_by_label("JSON schema").fill(json.dumps(SCHEMA))
    page.get_by_role("button", name="Create variable").click()
    page.wait_for_url(f"**/variables/{name}?*")
    assert "Variable created" in page.locator(".alert-ok").inner_text()


def _add_version(page: Page, value: dict[str, object], label: str, description: str = "") -> None:
    page.get_by_label("Value").fill(json.dumps(value, indent=2))
    page.locator("#validation.ok").wait_for()
    if description:
        page.get_by_label("Description").fill(description)
    page.get_by_label("or a new label").fill(label)
    page.get_by_role("button", name="Save as new version").click()
    page.locator(".alert-ok").wait_for()


def _sdk_config(live: LiveServer) -> VariablesConfig:
    token = keys.create_key(live.ctx, "default", frozenset({"read"}), "tests").token
    response = httpx.get(f"{live.url}/v1/variables/", headers={"Authorization": f"bearer {token}"})
    return VariablesConfig.model_validate(response.json())


def test_login_is_required_and_wrong_passwords_are_refused(browser: Browser, live: LiveServer) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live.url}/p/default/simulator")
        assert "/login" in page.url
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        assert "Wrong username or password" in page.get_by_role("alert").inner_text()
        page.get_by_label("Password").fill(live.admin_password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/p/default/simulator")
        cookie = next(c for c in context.cookies() if c["name"] == "setpoint_session")
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
    finally:
        context.close()


def test_main_journey(page: Page, live: LiveServer) -> None:
    name = f"agent_{uuid.uuid4().hex[:6]}"
    _create_json_variable(page, live, name)

    # An invalid value is flagged before saving, and refused when saved anyway.
    page.get_by_label("Value").fill('{"instructions": 42}')
    page.locator("#validation.bad").wait_for()
    assert "is not of type 'string'" in page.locator("#validation").inner_text()
    page.get_by_role("button", name="Save as new version").click()
    assert "is not of type 'string'" in page.locator("#form-error").inner_text()
    assert page.locator("tr[data-version]").count() == 0

    _add_version(page, {"instructions": "Be concise.", "temperature": 0.2}, "production", "first prompt")
    _add_version(page, {"instructions": "Be thorough.", "temperature": 0.7}, "canary")
    assert page.locator("tr[data-version]").count() == 2
    assert "first prompt" in page.locator('tr[data-version="1"]').inner_text()

    # Compare the two versions.
    page.get_by_role("button", name="Compare").click()
    diff = page.locator("[data-diff]").inner_text()
    assert '-  "instructions": "Be concise."' in diff
    assert '+  "instructions": "Be thorough."' in diff

    # Targeting: a 90/10 rollout, remainder computed live, and an override rule.
    page.get_by_role("link", name="Targeting").click()
    default_rollout = page.locator("section", has=page.get_by_role("heading", name="Default rollout"))
    default_rollout.get_by_label("production").fill("90")
    assert "Code default: 10%" in default_rollout.locator("[data-remainder]").inner_text()
    default_rollout.get_by_label("canary").fill("10")
    assert "Code default: 0%" in default_rollout.locator("[data-remainder]").inner_text()
    page.get_by_role("button", name="+ Add rule").click()
    rule = page.locator("[data-rules] [data-rule]").first
    rule.get_by_label("Attribute").fill("plan")
    rule.get_by_label("Operator").select_option("value-equals")
    rule.get_by_label("Value").fill("enterprise")
    rule.get_by_label("canary").fill("100")
    page.get_by_role("button", name="Save targeting").click()
    assert "Targeting saved" in page.locator(".alert-ok").inner_text()
    assert page.locator("[data-rules] [data-rule]").count() == 1

    # The simulator agrees with the SDK for many users, with and without the rule's attribute.
    saved = registered_variables()
    agent = setpoint.var(name, type=AgentConfig, default=AgentConfig(instructions="code default"))
    setpoint.configure(config=_sdk_config(live), instrument=False)
    try:
        seen = set()
        for i, attributes in enumerate(["", "plan=enterprise", "plan=free", "", "", "plan=enterprise"] * 2):
            key = f"user-{i}"
            page.goto(f"{live.url}/p/default/simulator")
            page.get_by_label("Targeting key").fill(key)
            page.get_by_label("Attributes").fill(attributes)
            page.get_by_role("button", name="Simulate").click()
            row = page.locator(f'tr[data-variable="{name}"]')
            attrs = dict([attributes.split("=")]) if attributes else {}
            resolved = agent.get(key, attrs)
            label_text = row.locator('[data-col="label"]').inner_text()
            assert (resolved.label or "—") in label_text
            assert row.locator('[data-col="reason"]').inner_text() == resolved.reason
            if resolved.label:
                assert resolved.value.instructions in row.locator('[data-col="value"]').inner_text()
            seen.add(resolved.label)
            if attrs.get("plan") == "enterprise":
                assert "override #1 matched" in row.locator('[data-col="explanation"]').inner_text()
        assert "canary" in seen
        assert "production" in seen
    finally:
        setpoint.shutdown()
        restore_registry(saved)

    # Restore the first version from the History tab.
    page.goto(f"{live.url}/p/default/variables/{name}/history")
    assert "set targeting" in page.locator(".timeline").first.inner_text()
    restore = page.locator('tr[data-version="1"]')
    restore.get_by_label("Label to move onto the restored version").select_option("production")
    restore.get_by_role("button", name="Restore version 1").click()
    assert "Restored version 1 as version 3" in page.locator(".alert-ok").inner_text()
    assert "production" in page.locator('tr[data-version="3"]').inner_text()
    assert "Restored from version 1" in page.locator('tr[data-version="3"]').inner_text()

    # A rollout over 100% is flagged live and refused on save.
    page.get_by_role("link", name="Targeting").click()
    default_rollout = page.locator("section", has=page.get_by_role("heading", name="Default rollout"))
    default_rollout.get_by_label("production").fill("95")
    assert "more than 100%" in default_rollout.locator("[data-remainder]").inner_text()
    page.get_by_role("button", name="Save targeting").click()
    error = page.locator("#form-error").inner_text()
    assert "add up to 105%, more than 100%" in error
    page.get_by_role("link", name="Targeting").click()
    assert (
        page.locator("section", has=page.get_by_role("heading", name="Default rollout"))
        .get_by_label("production")
        .input_value()
        == "90"
    )


def test_stale_edit_is_refused(browser: Browser, live: LiveServer) -> None:
    name = f"stale_{uuid.uuid4().hex[:6]}"
    alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
    try:
        alice, bob = login(alice_ctx, live), login(bob_ctx, live)
        _create_json_variable(alice, live, name)
        _add_version(alice, {"instructions": "one"}, "production")
        for who in (alice, bob):
            who.goto(f"{live.url}/p/default/variables/{name}/targeting")
        alice.get_by_label("production").fill("50")
        alice.get_by_role("button", name="Save targeting").click()
        assert "Targeting saved" in alice.locator(".alert-ok").inner_text()
        bob.get_by_label("production").fill("100")
        bob.get_by_role("button", name="Save targeting").click()
        error = bob.locator("#form-error").inner_text()
        assert "changed by someone else" in error
        assert bob.get_by_label("production").input_value() == "50"  # what Alice saved, not Bob's refused edit
        bob.get_by_role("link", name="Targeting").click()
        assert bob.get_by_label("production").input_value() == "50"
        # The Values tab refuses a stale new version just the same.
        alice.goto(f"{live.url}/p/default/variables/{name}")
        bob.goto(f"{live.url}/p/default/variables/{name}")
        _add_version(alice, {"instructions": "two"}, "canary")
        bob.get_by_label("Value").fill('{"instructions": "three"}')
        bob.get_by_role("button", name="Save as new version").click()
        assert "changed by someone else" in bob.locator("#form-error").inner_text()
    finally:
        alice_ctx.close()
        bob_ctx.close()


def test_rule_builder_covers_every_condition_kind(page: Page, live: LiveServer) -> None:
    name = f"rules_{uuid.uuid4().hex[:6]}"
    _create_json_variable(page, live, name)
    _add_version(page, {"instructions": "one"}, "production")
    page.get_by_role("link", name="Targeting").click()
    page.get_by_role("button", name="+ Add rule").click()
    rule = page.locator("[data-rules] [data-rule]").first
    options = rule.get_by_label("Operator").locator("option").evaluate_all("els => els.map(e => e.value)")
    assert set(options) == set(CONDITION_KINDS)
    rule.get_by_label("Operator").select_option("in-segment")
    assert rule.get_by_label("Segment").is_visible()
    assert not rule.get_by_label("Attribute").is_visible()
    rule.get_by_label("Operator").select_option("key-is-present")
    assert rule.get_by_label("Attribute").is_visible()
    assert not rule.get_by_label("Value").is_visible()
    rule.get_by_label("Attribute").fill("beta")
    rule.get_by_label("production").fill("100")
    rule.get_by_role("button", name="+ Add condition").click()
    second = rule.locator("[data-cond]").nth(1)
    second.get_by_label("Match").select_option("yes")
    second.get_by_label("Attribute").fill("app_version")
    second.get_by_label("Operator").select_option("value-semver-less-than")
    second.get_by_label("Value").fill("2.0.0")
    page.get_by_role("button", name="+ Add rule").click()
    last = page.locator("[data-rules] [data-rule]").nth(1)
    last.get_by_label("Attribute").fill("region")
    last.get_by_label("Operator").select_option("value-is-in")
    last.get_by_label("Values").fill("eu, us")
    last.get_by_role("button", name="Move rule up").click()
    assert page.locator("[data-rules] [data-rule]").first.get_by_label("Attribute").input_value() == "region"
    page.get_by_role("button", name="Save targeting").click()
    assert "Targeting saved" in page.locator(".alert-ok").inner_text()
    token = keys.create_key(live.ctx, "default", frozenset({"read"}), "tests").token
    overrides = httpx.get(
        f"{live.url}/v1/variables/{name}/targeting/", headers={"Authorization": f"bearer {token}"}
    ).json()["overrides"]
    assert overrides[0]["conditions"] == [{"kind": "value-is-in", "attribute": "region", "values": ["eu", "us"]}]
    assert overrides[1]["conditions"] == [
        {"kind": "key-is-present", "attribute": "beta"},
        {"kind": "value-semver-less-than", "attribute": "app_version", "value": "2.0.0", "negate": True},
    ]
    assert overrides[1]["rollout"] == {"labels": {"production": 1.0}}
    # Delete the first rule and save.
    page.locator("[data-rules] [data-rule]").first.get_by_role("button", name="Delete rule").click()
    page.get_by_role("button", name="Save targeting").click()
    assert page.locator("[data-rules] [data-rule]").count() == 1


def test_api_keys_page_shows_a_new_key_once_and_revokes(page: Page, live: LiveServer) -> None:
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("checkout service")
    page.get_by_label("write").check()
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#new-key").inner_text()
    assert token.startswith("sp_")
    last_used = page.locator("tr", has_text="checkout service").locator("[data-last-used]")
    assert last_used.inner_text() == "never"
    with httpx.Client(base_url=live.url, headers={"Authorization": f"bearer {token}"}) as client:
        assert client.get("/v1/variables/").status_code == 200
        page.reload()
        assert page.locator("#new-key").count() == 0
        for _ in range(50):  # the use is recorded in the background
            if last_used.inner_text() != "never":
                break
            time.sleep(0.1)
            page.reload()
        assert last_used.inner_text().endswith(" UTC")
        page.get_by_role("link", name="API keys").click()
        page.once("dialog", lambda dialog: dialog.accept())  # "Revoke the key …?"
        page.get_by_role("button", name="Revoke key checkout service").click()
        assert "Revoked key" in page.locator(".alert-ok").inner_text()
        assert client.get("/v1/variables/").status_code == 401
