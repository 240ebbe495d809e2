"""External variables and ``read_external`` keys in the browser: the create form's External toggle, the
Settings checkbox, and a key made on the API keys page that evaluates only external variables over OFREP."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from setpoint._server.services import variables as var_service
from setpoint._server.services.bootstrap import DEFAULT_PROJECT
from setpoint._server.services.keys import get_project
from tests.manage.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def _create(page: Page, name: str, *, external: bool) -> None:
    page.get_by_role("link", name="Variables", exact=True).first.click()
    page.get_by_role("link", name="New variable").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Boolean").check()
    if external:
        page.get_by_label("External").check()
    page.get_by_role("button", name="Create variable").click()
    assert "Variable created" in page.locator(".alert-ok").inner_text()


def _external(live: LiveServer, name: str) -> bool:
    project = get_project(live.ctx, DEFAULT_PROJECT)
    return bool(var_service.get_variable(live.ctx, project.id, name).wire.get("external", False))


def test_external_toggle_settings_and_a_read_external_key(page: Page, live: LiveServer) -> None:
    suffix = uuid.uuid4().hex[:6]
    public, internal = f"theme_{suffix}", f"pricing_{suffix}"
    _create(page, public, external=True)
    assert _external(live, public)
    page.get_by_role("link", name="Settings").click()
    assert page.get_by_label("External").is_checked()
    assert page.locator(".page-head [data-external]").inner_text() == "external"
    page.get_by_label("External").uncheck()
    page.get_by_role("button", name="Save details").click()
    assert "Settings saved" in page.locator(".alert-ok").inner_text()
    assert not page.get_by_label("External").is_checked() and not _external(live, public)
    assert page.locator(".page-head [data-external]").count() == 0
    page.get_by_label("External").check()
    page.get_by_role("button", name="Save details").click()
    assert page.get_by_label("External").is_checked() and _external(live, public)
    _create(page, internal, external=False)
    assert not _external(live, internal)

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill(f"web app {suffix}")
    page.locator("input[name=scope_read]").uncheck()
    page.get_by_label("read_external").check()  # the label names the scope
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#new-key").inner_text()
    row = page.locator("tr", has_text=f"web app {suffix}")
    assert row.locator(".badge").all_inner_texts() == ["read_external"]

    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        flags = client.post("/v1/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u1"}}).json()["flags"]
        names = [f["key"] for f in flags]
        assert public in names and internal not in names
        assert client.post(f"/ofrep/v1/evaluate/flags/{internal}", json={}).status_code == 404
        assert client.get("/v1/variables/").status_code == 403
