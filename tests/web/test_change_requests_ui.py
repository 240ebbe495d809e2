"""Four-eyes review in Chromium: the admin turns review on from the Members page, an editor's move of the
protected label becomes a change request (the nav counts it), a second editor approves it with a comment and
cannot be the author, the author applies it, and the label moved exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from setpoint._server.services import keys
from tests.manage.live import LiveServer
from tests.server.people_support import make_person
from tests.web.browser import logged_in_page
from tests.web.conftest import login

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    made: list[BrowserContext] = []
    try:
        yield made
    finally:
        for ctx in made:
            ctx.close()


def test_propose_approve_apply_in_the_browser(
    context: BrowserContext, browser: Browser, contexts: list[BrowserContext], live: LiveServer
) -> None:
    owner = login(context, live)
    tag = uuid.uuid4().hex[:6]
    author = make_person(live.ctx, f"Eddie {tag}", project="default", role="editor")
    reviewer = make_person(live.ctx, f"Rita {tag}", project="default", role="editor")
    token = keys.create_key(live.ctx, "default", frozenset({"read", "write"}), "tests").token
    api = httpx.Client(base_url=live.url, headers={"Authorization": f"bearer {token}"})
    try:
        _journey(owner, browser, contexts, live, api, author.email, reviewer.email, tag)
    finally:
        api.close()


def _journey(
    owner: Page,
    browser: Browser,
    contexts: list[BrowserContext],
    live: LiveServer,
    api: httpx.Client,
    author_email: str,
    reviewer_email: str,
    tag: str,
) -> None:
    name = f"checkout_{tag}"
    labels = {
        "production": {"target_type": "version", "serialized_value": "1"},
        "staging": {"target_type": "version", "serialized_value": "2"},
    }
    api.post("/v1/variables/", json={"name": name, "labels": labels}).raise_for_status()

    # The admin turns review on for protected labels.
    owner.goto(f"{live.url}/p/default/members")
    settings = owner.locator("[data-review-settings]")
    settings.get_by_label("Changes touching a protected label need a second person's approval").check()
    settings.get_by_role("button", name="Save").click()
    assert "Review of changes: on" in owner.locator(".alert-ok").inner_text()

    # The editor moves production: nothing applies, a request opens and the nav counts it.
    editor = logged_in_page(browser, live, author_email)
    contexts.append(editor.context)
    editor.goto(f"{live.url}/p/default/variables/{name}/targeting")
    assert "need review" in editor.locator("[data-review-note]").inner_text()
    editor.goto(f"{live.url}/p/default/variables/{name}")
    editor.get_by_label("Label", exact=True).select_option("production")
    editor.get_by_label("Points at").select_option("version:2")
    editor.get_by_role("button", name="Move label").click()
    editor.wait_for_url("**/change-requests/*")
    assert "needs review" in editor.locator(".alert-ok").inner_text()
    assert editor.locator("[data-request-state]").inner_text() == "open"
    assert editor.locator("[data-open-requests]").inner_text() == "1"
    assert not editor.get_by_role("button", name="Approve", exact=True).is_visible()  # never the author
    diff = editor.locator("[data-diff]").inner_text()
    assert '"version": 2' in diff and '"version": 1' in diff
    assert api.get(f"/v1/variables/{name}/").json()["labels"]["production"]["version"] == 1
    request_url = editor.url.split("?")[0]

    # Saving the Targeting tab with production at 50% opens a second request.
    editor.goto(f"{live.url}/p/default/variables/{name}/targeting")
    editor.locator('input[name="weight:production"]').fill("50")
    editor.get_by_role("button", name="Save targeting").click()
    editor.wait_for_url("**/change-requests/*")
    assert editor.locator("[data-open-requests]").inner_text() == "2"
    assert '"production": 0.5' in editor.locator("[data-diff]").inner_text()
    targeting_url = editor.url.split("?")[0]
    assert api.get(f"/v1/variables/{name}/").json()["rollout"] == {"labels": {}}
    editor.goto(f"{live.url}/p/default/variables/{name}/targeting")
    assert editor.locator("[data-waiting-requests] a").count() == 2

    # A second person approves it, with a comment.
    second = logged_in_page(browser, live, reviewer_email)
    contexts.append(second.context)
    second.get_by_role("link", name="Requests").click()
    second.get_by_role("link", name=f"{name}: change label production").click()
    second.get_by_label("Comment (optional)").fill("Checked the dashboards")
    second.get_by_role("button", name="Approve", exact=True).click()
    assert second.locator(".alert-ok").inner_text() == "Approved."
    assert second.locator("[data-request-state]").inner_text() == "approved"

    # ... and rejects the targeting change.
    second.goto(targeting_url)
    second.get_by_label("Comment (optional)").fill("Not this week")
    second.get_by_role("button", name="Reject").click()
    assert second.locator("[data-request-state]").inner_text() == "rejected"

    # The author applies it; the label moved, once, and the history says how.
    editor.goto(request_url)
    assert "Checked the dashboards" in editor.locator("[data-comment]").inner_text()
    editor.get_by_role("button", name="Apply").click()
    assert editor.locator("[data-request-state]").inner_text() == "applied"
    assert not editor.get_by_role("button", name="Apply").is_visible()
    assert api.get(f"/v1/variables/{name}/").json()["labels"]["production"]["version"] == 2
    editor.goto(f"{live.url}/p/default/variables/{name}/history")
    assert "applying change request" in editor.locator("main").inner_text()
    assert editor.locator("[data-open-requests]").count() == 0
