"""The Settings tab in the browser: description and aliases, rename keeping an alias, delete with confirmation."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from tests.manage.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_describe_rename_and_delete(page: Page, live: LiveServer) -> None:
    name = f"flag_{uuid.uuid4().hex[:6]}"
    page.get_by_role("link", name="New variable").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Boolean").check()
    assert not page.get_by_label("JSON schema").is_visible()
    page.get_by_role("button", name="Create variable").click()
    page.get_by_role("link", name="Settings").click()

    page.get_by_label("Description").fill("Turns the new flow on")
    page.get_by_label("Aliases").fill("old_flag, older_flag")
    page.get_by_role("button", name="Save details").click()
    assert "Settings saved" in page.locator(".alert-ok").inner_text()
    assert "also known as" in page.locator(".page-head").inner_text()

    new_name = name + "_v2"
    page.get_by_label("New name").fill(new_name)
    page.get_by_role("button", name="Rename").click()
    assert f"Renamed '{name}' to '{new_name}'" in page.locator(".alert-ok").inner_text()
    assert name in page.get_by_label("Aliases").input_value()

    page.get_by_label("Type").fill("wrong name")
    page.get_by_role("button", name="Delete this variable").click()
    assert "to confirm" in page.locator("#form-error").inner_text()
    page.get_by_label("Type").fill(new_name)
    page.get_by_role("button", name="Delete this variable").click()
    assert f"Deleted variable '{new_name}'" in page.locator(".alert-ok").inner_text()
    page.get_by_label("Search").fill(new_name)
    page.get_by_role("button", name="Search").click()
    assert "No variable matches" in page.locator("table").inner_text()
