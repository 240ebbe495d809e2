"""Several real people in Chromium: the owner invites them from the People page, each sets their password
through their one-time link, the owner gives them roles on the Members page; then an editor cannot move the
protected label, a viewer cannot edit, an admin can, and the history names each of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from setpoint._server.services import keys
from tests.manage.live import LiveServer
from tests.web.conftest import login

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser
PASSWORD = "people ui password"


@pytest.fixture
def owner(context: BrowserContext, live: LiveServer) -> Page:
    return login(context, live)


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    made: list[BrowserContext] = []

    def _close() -> None:
        for ctx in made:
            ctx.close()

    try:
        yield made
    finally:
        _close()


def _invite(owner: Page, live: LiveServer, email: str, name: str) -> str:
    owner.goto(f"{live.url}/people")
    owner.get_by_label("Email").fill(email)
    owner.get_by_label("Name").fill(name)
    owner.get_by_role("button", name="Invite").click()
    link = owner.locator("#one-time-link").inner_text()
    assert link.startswith(live.url + "/invite/")
    return link


def _accept(browser: Browser, contexts: list[BrowserContext], link: str) -> Page:
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(10_000)
    contexts.append(ctx)
    page = ctx.new_page()
    page.goto(link)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Set password and log in").click()
    page.wait_for_url("**/variables")
    return page


def _add_member(owner: Page, live: LiveServer, email: str, role: str) -> None:
    owner.goto(f"{live.url}/p/default/members")
    owner.locator("#m-email").fill(email)
    owner.locator("#m-role").select_option(role)
    owner.get_by_role("button", name="Add member").click()
    assert f"is now {role}" in owner.locator(".alert-ok").inner_text()


def _move(page: Page, live: LiveServer, name: str, label: str, version: int) -> str:
    page.goto(f"{live.url}/p/default/variables/{name}")
    page.get_by_label("Label", exact=True).select_option(label)
    page.get_by_label("Points at").select_option(f"version:{version}")
    page.get_by_role("button", name="Move label").click()
    alert = page.locator(".alert-ok, .alert-error, #form-error").first
    return alert.inner_text()


def test_roles_in_the_browser_with_several_people(
    owner: Page, browser: Browser, contexts: list[BrowserContext], live: LiveServer
) -> None:
    tag = uuid.uuid4().hex[:6]
    people = {"admin": "Ada Admin", "editor": "Eddie Editor", "viewer": "Vera Viewer"}
    pages: dict[str, Page] = {}
    for role, name in people.items():
        email = f"{role}.{tag}@example.com"
        link = _invite(owner, live, email, name)
        assert owner.locator(f'tr[data-person="{email}"]').get_by_text("invited").is_visible()
        _add_member(owner, live, email, role)
        pages[role] = _accept(browser, contexts, link)
        assert pages[role].locator("[data-my-name]").inner_text() == name
        assert pages[role].locator("[data-my-role]").inner_text() == role
        # The link worked once.
        again = pages[role].context.new_page()
        assert again.goto(link) is not None and "already used" in again.content()
        again.close()

    token = keys.create_key(live.ctx, "default", frozenset({"read", "write"}), "tests").token
    name = f"checkout_{tag}"
    labels = {
        "production": {"target_type": "version", "serialized_value": "1"},
        "staging": {"target_type": "version", "serialized_value": "2"},
    }
    httpx.post(
        f"{live.url}/v1/variables/", json={"name": name, "labels": labels}, headers={"Authorization": f"bearer {token}"}
    ).raise_for_status()

    # The viewer sees no change forms, and a forged change is refused.
    viewer = pages["viewer"]
    viewer.goto(f"{live.url}/p/default/variables/{name}")
    assert viewer.locator("[data-read-only]").is_visible()
    assert not viewer.get_by_role("button", name="Move label").is_visible()
    forged = viewer.request.post(
        f"{live.url}/p/default/variables/{name}/labels",
        form={"label": "staging", "target": "version:1", "csrf_token": _csrf(viewer)},
    )
    assert forged.status == 403 and "needs the editor role" in forged.text()

    # The editor moves staging but cannot move the protected production label.
    editor = pages["editor"]
    assert "now points at version 1" in _move(editor, live, name, "staging", 1)
    refused = _move(editor, live, name, "production", 2)
    assert "protected" in refused and "needs the admin role" in refused
    assert not editor.get_by_role("link", name="Audit").is_visible()

    # The admin can.
    admin = pages["admin"]
    assert "now points at version 2" in _move(admin, live, name, "production", 2)

    # History names each person, with their initials.
    admin.goto(f"{live.url}/p/default/variables/{name}/history")
    history = admin.locator("main").inner_text()
    assert "Eddie Editor" in history and "Ada Admin" in history
    assert admin.locator(".who .avatar", has_text="EE").count() >= 1
    assert admin.locator(".who .avatar", has_text="AA").count() >= 1
    admin.get_by_role("link", name="Audit").click()
    assert "Eddie Editor" in admin.locator("main").inner_text()

    # Deactivating the editor logs them out at once.
    owner.goto(f"{live.url}/people")
    owner.get_by_role("button", name="Deactivate: Eddie Editor").click()
    assert "their sessions and API keys ended" in owner.locator(".alert-ok").inner_text()
    editor.goto(f"{live.url}/p/default/variables")
    assert "/login" in editor.url


def _csrf(page: Page) -> str:
    value = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert value
    return value
