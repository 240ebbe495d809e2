"""Labels on the Values tab: move, point at another label or the code default, delete, refused while in use."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from tests.manage.live import LiveServer
from tests.web.test_journeys import _add_version, _create_json_variable

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_move_and_delete_labels(page: Page, live: LiveServer) -> None:
    name = f"labels_{uuid.uuid4().hex[:6]}"
    _create_json_variable(page, live, name)
    _add_version(page, {"instructions": "one"}, "production")
    _add_version(page, {"instructions": "two"}, "canary")

    page.get_by_label("Label", exact=True).select_option("production")
    page.get_by_label("Points at").select_option("version:2")
    page.get_by_role("button", name="Move label").click()
    assert "Label 'production' now points at version 2" in page.locator(".alert-ok").inner_text()
    assert "production" in page.locator('tr[data-version="2"]').inner_text()

    page.get_by_label("New label name").fill("premium")
    page.get_by_label("Points at").select_option("label:canary")
    page.get_by_role("button", name="Move label").click()
    assert "label canary" in page.locator('tr[data-label="premium"]').inner_text()

    page.get_by_role("link", name="Targeting").click()
    page.locator("section", has=page.get_by_role("heading", name="Default rollout")).get_by_label("canary").fill("100")
    page.get_by_role("button", name="Save targeting").click()
    page.get_by_role("link", name="Values").click()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmation (tests/web/test_polish.py dismisses it)
    page.get_by_role("button", name="Delete label canary").click()
    assert "still used by the default rollout, label 'premium'" in page.locator("#form-error").inner_text()
    page.get_by_role("button", name="Delete label production").click()
    assert "Label 'production' deleted" in page.locator(".alert-ok").inner_text()
    assert page.locator('tr[data-label="production"]').count() == 0
    page.get_by_role("link", name="History").click()
    assert "removed" in page.locator(".timeline").nth(1).inner_text()
