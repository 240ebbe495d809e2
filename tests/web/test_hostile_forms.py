"""The web UI's forms refuse non-finite numbers and regexes RE2 and Python cannot run alike (issue 9, items 2
and 3), in headless Chromium against a real server; nothing is stored."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from setpoint._server.services import catalog, editing, lifecycle
from tests.manage.live import LiveServer
from tests.web.test_segments_ui import _create_segment, _project_id, _stored, _user_keys

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
ACTOR = "user:admin"


@pytest.mark.parametrize("text", ["NaN", "Infinity", '{"limit": 1e309}'])
def test_value_form_refuses_non_finite_numbers(page: Page, live: LiveServer, text: str) -> None:
    name = f"limits_{uuid.uuid4().hex[:6]}"
    lifecycle.create_variable(live.ctx, _project_id(live), name, ACTOR, kind="json")
    page.goto(f"{live.url}/p/default/variables/{name}")
    page.get_by_label("Value").fill(text)
    page.get_by_label("or a new label").fill("production")
    page.get_by_role("button", name="Save as new version").click()
    error = page.locator("#form-error").inner_text()
    assert "finite" in error or "not valid JSON" in error
    assert page.get_by_label("Value").input_value() == text  # what the user typed is kept
    assert catalog.list_version_info(live.ctx, _project_id(live), name) == []


def test_targeting_form_refuses_hostile_regex_and_infinite_numbers(page: Page, live: LiveServer) -> None:
    name = f"gate_{uuid.uuid4().hex[:6]}"
    pid = _project_id(live)
    lifecycle.create_variable(live.ctx, pid, name, ACTOR, kind="boolean")
    editing.create_version(live.ctx, pid, name, "true", ACTOR, label="on")
    page.goto(f"{live.url}/p/default/variables/{name}/targeting")
    page.get_by_role("button", name="+ Add rule").click()
    rule = page.locator("[data-rules] [data-rule]").first
    rule.get_by_label("Attribute").fill("email")
    rule.get_by_label("Operator").select_option("value-matches-regex")
    rule.get_by_label("Pattern").fill("(?<=admin)@corp")
    rule.get_by_label("on", exact=True).fill("100")
    page.get_by_role("button", name="Save targeting").click()
    assert "lookbehind" in page.locator("#form-error").inner_text()

    rule = page.locator("[data-rules] [data-rule]").first
    rule.get_by_label("Operator").select_option("value-greater-than")
    rule.get_by_label("Value").fill("1e309")
    page.get_by_role("button", name="Save targeting").click()
    assert "NaN or infinite" in page.locator("#form-error").inner_text()
    assert catalog.get_record(live.ctx, pid, name).fields.overrides == []


def test_segment_form_refuses_backreferences_and_infinite_numbers(page: Page, live: LiveServer) -> None:
    key = f"rx-{uuid.uuid4().hex[:6]}"
    _create_segment(live, key)
    page.goto(f"{live.url}/p/default/segments/{key}")
    _user_keys(page).get_by_label("Included keys").fill("zoe")
    page.get_by_role("button", name="+ Add rule").click()
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    rule.get_by_label("Attribute").fill("name")
    rule.get_by_label("Operator").select_option("matches")
    rule.get_by_label("Values").fill(r"^(\w)\1")
    page.get_by_role("button", name="Save segment").click()
    assert "backreferences" in page.locator("#form-error").inner_text()
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    rule.get_by_label("Operator").select_option("greaterThan")
    rule.get_by_label("Values").fill("-1e400")
    page.get_by_role("button", name="Save segment").click()
    assert "NaN or infinite" in page.locator("#form-error").inner_text()
    assert _stored(live, key).rules == [] and _stored(live, key).included == []
