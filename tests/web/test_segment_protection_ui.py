"""In Chromium: an editor saving the segment form of a segment that decides who gets the protected
``production`` label sees why it is refused (and the segment is unchanged); an admin saves it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from setpoint._server.services import editing, keys, lifecycle
from setpoint._server.services.segments import service as segments
from tests.manage.live import LiveServer
from tests.server.people_support import make_person
from tests.web.browser import logged_in_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
ACTOR = "tests"


def _add_key(page: Page, live: LiveServer, segment: str, user: str) -> None:
    page.goto(f"{live.url}/p/default/segments/{segment}")
    included = page.locator("[data-target]").first.get_by_label("Included keys")
    included.fill(f"{included.input_value()}\n{user}".strip())
    page.get_by_role("button", name="Save segment").click()


def test_the_segment_form_shows_why_an_editor_may_not_change_a_protected_segment(
    browser: Browser, live: LiveServer
) -> None:
    tag = uuid.uuid4().hex[:6]
    pid = keys.get_project(live.ctx, "default").id
    segment, name = f"beta-{tag}", f"checkout_{tag}"
    segments.create_segment(live.ctx, pid, {"key": segment, "name": "Beta", "included": ["u1"]}, ACTOR)
    lifecycle.create_variable(live.ctx, pid, name, ACTOR, kind="boolean")
    editing.create_version(live.ctx, pid, name, "true", ACTOR, label="production")
    rule = {"conditions": [{"kind": "in-segment", "segment": segment}], "rollout": {"labels": {"production": 1.0}}}
    editing.set_targeting(live.ctx, pid, name, {"labels": {}}, [rule], ACTOR)
    editor = make_person(live.ctx, "Eddie Editor", project="default", role="editor")
    admin = make_person(live.ctx, "Ada Admin", project="default", role="admin")

    page = logged_in_page(browser, live, editor.email)
    try:
        _add_key(page, live, segment, "u2")
        error = page.locator("#form-error").inner_text()
        assert f"Segment '{segment}'" in error and f"'{name}'" in error and "'production'" in error
        assert "needs the admin role" in error and "Eddie Editor has the editor role" in error
        assert segments.get_segment(live.ctx, pid, segment).segment.included == ["u1"]
    finally:
        page.context.close()

    page = logged_in_page(browser, live, admin.email)
    try:
        _add_key(page, live, segment, "u2")
        assert "Segment saved" in page.locator(".alert-ok").inner_text()
        assert segments.get_segment(live.ctx, pid, segment).segment.included == ["u1", "u2"]
    finally:
        page.context.close()
