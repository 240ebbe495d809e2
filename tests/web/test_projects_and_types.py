"""The project switcher, creating a project, the types page and a variable of a pushed type."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.manage.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_create_and_switch_projects(page: Page, live: LiveServer) -> None:
    team = f"team-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Project").select_option("")
    page.wait_for_url("**/projects")
    page.get_by_label("Name").fill(team)
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(f"**/p/{team}/variables")
    assert "No variables yet" in page.locator("table").inner_text()
    page.get_by_label("Project").select_option("default")
    page.wait_for_url("**/p/default/variables")


def test_type_page_and_a_variable_of_that_type(page: Page, live: LiveServer) -> None:
    type_name = f"Prompt{uuid.uuid4().hex[:6]}"
    page.get_by_role("link", name="Types").click()
    page.get_by_label("Name").fill(type_name)
    page.get_by_label("JSON schema").fill("{not json")
    page.get_by_role("button", name="Save type").click()
    assert "not valid JSON" in page.get_by_role("alert").inner_text()
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    page.get_by_label("JSON schema").fill(json.dumps(schema))
    page.get_by_role("button", name="Save type").click()
    assert f"Saved type '{type_name}'" in page.locator(".alert-ok").inner_text()

    name = f"prompt_{uuid.uuid4().hex[:6]}"
    page.get_by_role("link", name="Variables").click()
    page.get_by_role("link", name="New variable").click()
    page.get_by_label("Name").fill(name)
    page.locator(f'input[value="type:{type_name}"]').check()
    page.get_by_role("button", name="Create variable").click()
    page.get_by_label("Value").fill('{"wrong": 1}')
    page.locator("#validation.bad").wait_for()
    assert "'text' is a required property" in page.locator("#validation").inner_text()
    page.get_by_label("Value").fill('{"text": "hello"}')
    page.locator("#validation.ok").wait_for()
    page.get_by_role("button", name="Save as new version").click()
    assert "Saved version 1" in page.locator(".alert-ok").inner_text()
    page.get_by_role("link", name="Types").click()
    assert name in page.locator("section", has=page.get_by_role("heading", name=type_name)).inner_text()
