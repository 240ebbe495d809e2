"""Scheduling a label move from a variable's Values tab (headless Chromium in New York time): the local date and
time is stored as UTC, the pending move is listed on the Values tab in local time, the runner makes it (as the
person, "via schedule"), an editor cancels one; bad input, viewers and changes that need review are refused
with a message on the form and nothing is scheduled."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from setpoint._server.services import editing, keys, lifecycle
from setpoint._server.services.schedules import runner
from setpoint._server.services.schedules import service as schedules
from setpoint._server.storage.records import LabelTarget
from tests.manage.live import LiveServer
from tests.server.people_support import make_person
from tests.web.browser import logged_in_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ZONE = "America/New_York"


def _variable(live: LiveServer, name: str) -> int:
    """A variable with version 1 (label ``stable``) and version 2 (label ``canary``)."""
    project_id = keys.get_project(live.ctx, "default").id
    lifecycle.create_variable(live.ctx, project_id, name, "tests")
    editing.create_version(live.ctx, project_id, name, '"one"', "tests", label="stable")
    editing.create_version(live.ctx, project_id, name, '"two"', "tests", label="canary")
    return project_id


def _tomorrow_at(hour: int, minute: int) -> datetime:
    """Tomorrow at ``hour:minute`` New York time (as an aware New York datetime)."""
    day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE))


def _schedule_move(page: Page, label: str, target: str, when: datetime | str) -> None:
    page.locator("#move-label").select_option(label)
    page.locator("#move-target").select_option(target)
    text = when if isinstance(when, str) else when.strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("Or move it later, at (your time)").fill(text)
    page.locator("[data-schedule-move]").click()


def _points_at(page: Page, label: str) -> str:
    return page.locator(f"tr[data-label='{label}'] td").nth(1).inner_text()


def page_error(html: str) -> str:
    """The text of the page's form error ("" when it shows none)."""
    start = html.find('id="form-error"')
    return "" if start < 0 else html[start : html.find("</div>", start)]


def _csrf(page: Page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value") or ""


def test_schedule_a_label_move_see_it_pending_in_local_time_then_moved(browser: Browser, live: LiveServer) -> None:
    project_id = _variable(live, "banner")
    page = logged_in_page(browser, live, timezone=ZONE)
    try:
        page.goto(f"{live.url}/p/default/variables/banner")
        local = _tomorrow_at(9, 30)
        _schedule_move(page, "stable", "version:2", local)
        assert "Move of label 'stable' to version 2 scheduled" in page.locator(".alert-ok").inner_text()
        [pending] = schedules.list_for(live.ctx, project_id, variable="banner")
        assert pending.kind == "move_label" and pending.state == "pending"
        assert pending.due_at == local.astimezone(UTC)  # the browser's New York time, stored as UTC
        assert pending.payload == {"label": "stable", "target": {"target_type": "version", "version": 2}}
        # listed on the Values tab in the browser's time, not applied yet
        item = page.locator(f"[data-pending-moves] [data-schedule-id='{pending.id}']")
        assert "Move label 'stable' of banner to version 2" in item.inner_text()
        shown = item.locator("time").inner_text()
        assert "9:30:00" in shown and "UTC" not in shown, shown  # 14:30 or 13:30 UTC, localised by app.js
        assert _points_at(page, "stable") == "version 1"

        finished = runner.run_due(dataclasses.replace(live.ctx, clock=lambda: pending.due_at + timedelta(seconds=1)))
        assert [(s.id, s.state) for s in finished] == [(pending.id, "done")]
        page.reload()
        assert _points_at(page, "stable") == "version 2"
        assert page.locator("[data-pending-moves]").count() == 0
        page.goto(f"{live.url}/p/default/variables/banner/history")
        assert " via schedule" in page.locator("main").inner_text()  # made as the admin, via the schedule
    finally:
        page.context.close()


def test_an_editor_cancels_a_scheduled_move_from_the_values_tab(browser: Browser, live: LiveServer) -> None:
    project_id = _variable(live, "footer")
    editor = make_person(live.ctx, f"Eve {uuid.uuid4().hex[:6]}", project="default", role="editor")
    page = logged_in_page(browser, live, editor.email, timezone=ZONE)
    try:
        page.goto(f"{live.url}/p/default/variables/footer")
        _schedule_move(page, "canary", "code_default", _tomorrow_at(18, 0))
        page.locator(".alert-ok").wait_for()
        [pending] = schedules.list_for(live.ctx, project_id, variable="footer")
        assert pending.payload["target"] == {"target_type": "code_default"}
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Cancel scheduled change {pending.id}").click()
        assert f"Scheduled change #{pending.id} cancelled" in page.locator(".alert-ok").inner_text()
        assert schedules.get(live.ctx, project_id, pending.id).state == "cancelled"
        assert page.locator("[data-pending-moves]").count() == 0
        assert _points_at(page, "canary") == "version 2"
        # cancelling it again: 409 shown on the Values tab
        again = page.request.post(
            f"{live.url}/p/default/variables/footer/scheduled/{pending.id}/cancel", form={"csrf_token": _csrf(page)}
        )
        assert again.status == 409 and "only pending work can be cancelled" in again.text()
    finally:
        page.context.close()


def test_bad_label_schedule_forms_get_a_message_and_store_nothing(page: Page, live: LiveServer) -> None:
    project_id = _variable(live, "hostile")
    other_id = _variable(live, "elsewhere")
    url = f"{live.url}/p/default/variables/hostile/labels/schedule"
    page.goto(f"{live.url}/p/default/variables/hostile")
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    good = {"csrf_token": _csrf(page), "label": "stable", "target": "version:2", "schedule_at": soon}
    for bad, status, says in (
        ({"schedule_at": "", "schedule_at_local": ""}, 422, "choose a date and time"),
        ({"schedule_at": "", "schedule_at_local": "tomorrow"}, 422, "is not a date and time"),
        ({"schedule_at": "", "schedule_at_local": "2020-01-01T00:00:00"}, 422, "in the past"),
        ({"schedule_at": "2020-01-01T00:00:00+05:00"}, 422, "in the past"),
        ({"schedule_at": "9999-12-31T23:59:59-14:00"}, 422, "more than ten years ahead"),
        ({"schedule_at": "0001-01-01T00:00:00+14:00"}, 422, "in the past"),
        ({"schedule_at": "2026-13-45T99:00:00Z"}, 422, "is not a date and time"),
        ({"target": "version:99999999999999"}, 422, "between 1 and"),
        ({"target": "version:7"}, 422, "version 7"),
        ({"target": "version:x"}, 422, "choose a version"),
        ({"target": "version:" + "9" * 5000}, 422, "between 1 and"),
        ({"target": "label:nope"}, 422, "nope"),
        ({"label": "x" * 300}, 422, "at most 200 characters"),
        ({"label": ""}, 422, "label name"),
        ({"label": "bad label!"}, 422, "label name"),
    ):
        answer = page.request.post(url, form={**good, **bad})
        assert answer.status == status, (bad, answer.status, answer.text()[:2000])
        error = page_error(answer.text())
        assert says.lower() in error.lower(), (bad, error)
    # a schedule of another variable cannot be cancelled through this one's page; a huge id is refused
    theirs = schedules.create(
        live.ctx,
        other_id,
        "elsewhere",
        "move_label",
        {"label": "stable", "target": {"target_type": "latest"}},
        datetime.now(UTC) + timedelta(days=1),
        "tests",
    )
    cancel = f"{live.url}/p/default/variables/hostile/scheduled"
    wrong = page.request.post(f"{cancel}/{theirs.id}/cancel", form={"csrf_token": _csrf(page)})
    assert wrong.status == 404 and "not a scheduled change of hostile" in wrong.text()
    assert schedules.get(live.ctx, other_id, theirs.id).state == "pending"
    huge = page.request.post(f"{cancel}/99999999999999/cancel", form={"csrf_token": _csrf(page)})
    assert huge.status == 422 and "between 1 and" in huge.text()
    assert schedules.list_for(live.ctx, project_id, variable="hostile") == []
    no_token = page.request.post(url, form={**good, "csrf_token": "forged"})
    assert no_token.status in (400, 403)
    assert schedules.list_for(live.ctx, project_id, variable="hostile") == []
    schedules.cancel(live.ctx, other_id, theirs.id, "tests")


def test_viewers_see_pending_moves_but_cannot_schedule_or_cancel(browser: Browser, live: LiveServer) -> None:
    project_id = _variable(live, "menu")
    pending = schedules.create(
        live.ctx,
        project_id,
        "menu",
        "move_label",
        {"label": "stable", "target": {"target_type": "version", "version": 2}},
        datetime.now(UTC) + timedelta(days=1),
        "tests",
    )
    viewer = make_person(live.ctx, f"Vic {uuid.uuid4().hex[:6]}", project="default", role="viewer")
    page = logged_in_page(browser, live, viewer.email, timezone=ZONE)
    try:
        page.goto(f"{live.url}/p/default/variables/menu")
        assert "Move label 'stable' of menu to version 2" in page.locator("[data-pending-moves]").inner_text()
        assert page.locator("[data-pending-moves] form").count() == 0  # no Cancel
        assert not page.locator("[data-schedule-move]").is_visible()
        token = _csrf(page)
        forged = page.request.post(
            f"{live.url}/p/default/variables/menu/labels/schedule",
            form={
                "csrf_token": token,
                "label": "canary",
                "target": "version:1",
                "schedule_at": pending.due_at.isoformat(),
            },
        )
        assert forged.status == 403 and "needs the editor role" in forged.text()
        cancel = page.request.post(
            f"{live.url}/p/default/variables/menu/scheduled/{pending.id}/cancel", form={"csrf_token": token}
        )
        assert cancel.status == 403 and "needs the editor role" in cancel.text()
        assert [(s.id, s.state) for s in schedules.list_for(live.ctx, project_id, variable="menu")] == [
            (pending.id, "pending")
        ]
    finally:
        page.context.close()
        schedules.cancel(live.ctx, project_id, pending.id, "tests")


def test_protected_labels_and_review_are_checked_when_scheduling(browser: Browser, live: LiveServer) -> None:
    from setpoint._server.services.change_requests import service as review
    from setpoint._server.storage.change_requests import ACTIVE, ReviewSettings

    name = f"price_{uuid.uuid4().hex[:6]}"
    project_id = _variable(live, name)
    editing.set_label(live.ctx, project_id, name, "production", LabelTarget("version", version=1), "tests")
    editor = make_person(live.ctx, f"Ed {uuid.uuid4().hex[:6]}", project="default", role="editor")
    page = logged_in_page(browser, live, editor.email, timezone=ZONE)
    try:
        page.goto(f"{live.url}/p/default/variables/{name}")
        # production is protected: an editor may not move it, now or later
        _schedule_move(page, "production", "version:2", _tomorrow_at(8, 0))
        refused = page.locator("#form-error").inner_text()
        assert "protected" in refused and "needs the admin role" in refused
        # with review on, a scheduled move of it gets the API's 409 guidance (schedule the approved request's apply)
        review.set_settings(live.ctx, project_id, ReviewSettings(protected_labels=True), "tests")
        try:
            answer = page.request.post(
                f"{live.url}/p/default/variables/{name}/labels/schedule",
                form={
                    "csrf_token": _csrf(page),
                    "label": "production",
                    "target": "version:2",
                    "schedule_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                },
            )
            error = page_error(answer.text())
            assert answer.status == 409 and "scheduled changes are not reviewed" in error, error
            assert "apply_change_request" in error
        finally:
            review.set_settings(live.ctx, project_id, ReviewSettings(), "tests")
        assert schedules.list_for(live.ctx, project_id, variable=name) == []
        assert review.list_requests(live.ctx, project_id, ACTIVE, name) == []  # no request opened either
    finally:
        page.context.close()
