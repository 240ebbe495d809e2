"""Scheduling in the browser (headless Chromium in New York time): schedule a targeting change from the Targeting
tab with a local date and time, see it pending (in local time) on the Scheduled page, then applied by the
server's runner; start, pause and abort a progressive rollout from the Targeting tab's panel."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from setpoint._server.services import editing, keys, lifecycle
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
    project_id = keys.get_project(live.ctx, "default").id
    lifecycle.create_variable(live.ctx, project_id, name, "tests")
    editing.create_version(live.ctx, project_id, name, '"one"', "tests", label="stable")
    editing.create_version(live.ctx, project_id, name, '"two"', "tests", label="canary")
    editing.set_targeting(live.ctx, project_id, name, {"labels": {"stable": 1.0}}, [], "tests")
    return project_id


def test_schedule_a_targeting_change_see_it_pending_then_applied(browser: Browser, live: LiveServer) -> None:
    project_id = _variable(live, "checkout")
    page = logged_in_page(browser, live, timezone=ZONE)
    try:
        page.goto(f"{live.url}/p/default/variables/checkout/targeting")
        page.locator("#w-stable").fill("70")
        page.locator("#w-canary").fill("30")
        due = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        local = due.astimezone(ZoneInfo(ZONE))
        page.get_by_label("Or apply it later, at (your time)").fill(local.strftime("%Y-%m-%dT%H:%M:%S"))
        page.get_by_role("button", name="Schedule", exact=True).click()
        assert "Targeting change scheduled" in page.locator(".alert-ok").inner_text()
        [pending] = schedules.list_for(live.ctx, project_id, variable="checkout")
        assert pending.state == "pending" and pending.due_at == due  # the browser's New York time, stored as UTC
        assert pending.payload["rollout"] == {"labels": {"stable": 0.7, "canary": 0.3}}
        assert page.locator("[data-pending-changes]").inner_text().count("Replace the targeting of checkout") == 1
        # not applied yet
        assert page.locator("#w-stable").input_value() == "100"

        page.get_by_role("link", name="Scheduled", exact=True).click()
        row = page.locator(f"[data-schedule-id='{pending.id}']")
        assert row.get_attribute("data-state") == "pending"
        shown = row.locator("time").inner_text()
        assert "UTC" not in shown and str(local.day) in shown  # localised by app.js
        deadline = time.monotonic() + 60
        while row.get_attribute("data-state") != "done":
            assert time.monotonic() < deadline, "the scheduled change did not run"
            time.sleep(1)
            page.reload()
        assert "done" in row.inner_text()
        page.goto(f"{live.url}/p/default/variables/checkout/targeting")
        assert page.locator("#w-stable").input_value() == "70"
        assert page.locator("#w-canary").input_value() == "30"
        page.goto(f"{live.url}/p/default/variables/checkout/history")
        assert " via schedule" in page.locator("main").inner_text()  # who: the admin, via the schedule
        # a time in the past is refused with a message, nothing scheduled
        page.goto(f"{live.url}/p/default/variables/checkout/targeting")
        past = datetime.now(UTC).astimezone(ZoneInfo(ZONE)) - timedelta(hours=1)
        page.get_by_label("Or apply it later, at (your time)").fill(past.strftime("%Y-%m-%dT%H:%M:%S"))
        page.get_by_role("button", name="Schedule", exact=True).click()
        assert "in the past" in page.locator("#form-error").inner_text()
        assert len(schedules.list_for(live.ctx, project_id, variable="checkout")) == 1
    finally:
        page.context.close()


def test_cancel_a_scheduled_change_from_the_targeting_tab(browser: Browser, live: LiveServer) -> None:
    project_id = _variable(live, "sidebar")
    page = logged_in_page(browser, live, timezone=ZONE)
    try:
        page.goto(f"{live.url}/p/default/variables/sidebar/targeting")
        page.locator("#w-stable").fill("50")
        page.locator("#w-canary").fill("50")
        later = (datetime.now(UTC) + timedelta(days=1)).astimezone(ZoneInfo(ZONE))
        page.get_by_label("Or apply it later, at (your time)").fill(later.strftime("%Y-%m-%dT%H:%M:%S"))
        page.get_by_role("button", name="Schedule", exact=True).click()
        [pending] = schedules.list_for(live.ctx, project_id, variable="sidebar")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Cancel scheduled change {pending.id}").click()
        assert f"Scheduled change #{pending.id} cancelled" in page.locator(".alert-ok").inner_text()
        assert "/variables/sidebar/targeting?" in page.url  # back where the editor was
        assert schedules.get(live.ctx, project_id, pending.id).state == "cancelled"
        assert page.locator("[data-pending-changes]").count() == 0
        assert page.locator("#w-stable").input_value() == "100"  # nothing applied
    finally:
        page.context.close()


def test_progressive_rollout_panel_start_pause_abort(browser: Browser, live: LiveServer) -> None:
    _variable(live, "search")
    page = logged_in_page(browser, live, timezone=ZONE)
    try:
        page.goto(f"{live.url}/p/default/variables/search/targeting")
        panel = page.locator("[data-progressive]")
        panel.get_by_label("Label").select_option("canary")
        panel.get_by_label("From %").fill("10")
        panel.get_by_label("To %").fill("50")
        panel.get_by_label("Steps").fill("2")
        panel.get_by_role("button", name="Start progressive rollout").click()
        assert "Progressive rollout started" in page.locator(".alert-ok").inner_text()
        deadline = time.monotonic() + 30
        while "Step 0 of 2 applied" not in page.locator("[data-progressive]").inner_text():
            assert time.monotonic() < deadline, "step 0 did not run"
            time.sleep(0.5)
            page.reload()
        status = page.locator("[data-progressive]").inner_text()
        assert "canary at 10%" in status and "Next: step 1 (30%)" in status
        assert page.locator("#w-canary").input_value() == "10"
        page.locator("[data-progressive]").get_by_role("button", name="Pause").click()
        assert "paused" in page.locator("[data-progressive]").inner_text()
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("[data-progressive]").get_by_role("button", name="Abort").click()
        page.locator(".alert-ok").wait_for()
        assert "is aborted" in page.locator("[data-progressive]").inner_text()
        assert page.locator("#w-canary").input_value() == "10"  # the weights stay
        # a second rollout can start now; overlapping is refused
        page.locator("[data-progressive]").get_by_role("button", name="Start progressive rollout").click()
        page.locator(".alert-ok").wait_for()
        page.goto(f"{live.url}/p/default/scheduled")
        assert "search" in page.locator("main").inner_text()
    finally:
        page.context.close()


def test_hostile_schedule_forms_get_a_message_and_store_nothing(page: Page, live: LiveServer) -> None:
    project_id = _variable(live, "hostile")
    page.goto(f"{live.url}/p/default/variables/hostile/targeting")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    huge = page.request.post(f"{live.url}/p/default/scheduled/99999999999999/cancel", form={"csrf_token": token})
    assert huge.status == 422 and "between 1 and" in huge.text()
    good: dict[str, str | float | bool] = {
        "csrf_token": token,
        "label": "canary",
        "from": "10",
        "to": "50",
        "steps": "2",
        "every": "1",
        "unit": "hours",
    }
    for bad in (
        {"from": "NaN"},
        {"to": "1e400"},
        {"steps": "1e400"},
        {"every": "1e300"},
        {"unit": "weeks"},
        {"to": "x"},
    ):
        answer = page.request.post(f"{live.url}/p/default/variables/hostile/progressive-rollout", form={**good, **bad})
        assert answer.status == 422, (bad, answer.status)
        assert "form-error" in answer.text()
    for when in ("tomorrow", "", "2020-01-01T00:00:00"):
        answer = page.request.post(
            f"{live.url}/p/default/variables/hostile/targeting/schedule",
            form={"csrf_token": token, "weight:stable": "50", "schedule_at_local": when},
        )
        assert answer.status == 422, (when, answer.status)
    unknown = page.request.post(f"{live.url}/p/default/variables/hostile/progressive-rollout/explode", form=good)
    assert unknown.status == 422
    assert schedules.list_for(live.ctx, project_id, variable="hostile") == []


def test_propose_approve_then_schedule_the_apply(browser: Browser, live: LiveServer) -> None:
    """The change-request journey (propose as one person, approve as another) ending in a scheduled apply."""
    from setpoint._server.services.change_requests import service as review
    from setpoint._server.storage.change_requests import ReviewSettings

    tag = uuid.uuid4().hex[:6]
    project_id = _variable(live, f"pricing_{tag}")
    name = f"pricing_{tag}"
    editing.set_label(live.ctx, project_id, name, "production", LabelTarget("version", version=1), "tests")
    review.set_settings(live.ctx, project_id, ReviewSettings(protected_labels=True), "tests")
    author = make_person(live.ctx, f"Ann {tag}", project="default", role="editor")
    reviewer = make_person(live.ctx, f"Rob {tag}", project="default", role="editor")
    ann = logged_in_page(browser, live, author.email, timezone=ZONE)
    rob = logged_in_page(browser, live, reviewer.email, timezone=ZONE)
    try:
        # Ann moves production: it becomes a change request
        ann.goto(f"{live.url}/p/default/variables/{name}")
        ann.get_by_label("Label", exact=True).select_option("production")
        ann.get_by_label("Points at").select_option("version:2")
        ann.get_by_role("button", name="Move label").click()
        ann.wait_for_url("**/change-requests/*")
        request_url = ann.url.split("?")[0]
        # (her page offers no scheduled apply before approval)
        assert ann.locator("[data-schedule-apply]").count() == 0
        # Rob approves
        rob.goto(request_url)
        rob.get_by_role("button", name="Approve", exact=True).click()
        assert rob.locator("[data-request-state]").inner_text() == "approved"
        # Ann schedules its apply a few seconds from now, in her (New York) time
        ann.goto(request_url)
        due = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        ann.get_by_label("Or apply it later, at (your time)").fill(
            due.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S")
        )
        ann.locator("[data-schedule-apply]").get_by_role("button", name="Schedule").click()
        assert "Its apply is scheduled" in ann.locator(".alert-ok").inner_text()
        assert ann.locator("[data-request-state]").inner_text() == "approved"  # not applied yet
        [pending] = schedules.list_for(live.ctx, project_id, variable=name)
        assert pending.kind == "apply_change_request" and pending.due_at == due
        ann.get_by_role("link", name="Scheduled", exact=True).click()
        row = ann.locator(f"[data-schedule-id='{pending.id}']")
        assert row.get_attribute("data-state") == "pending"
        assert "Apply change request #" in row.inner_text()
        deadline = time.monotonic() + 60
        while row.get_attribute("data-state") != "done":
            assert time.monotonic() < deadline, "the scheduled apply did not run"
            time.sleep(1)
            ann.reload()
        ann.goto(request_url)
        assert ann.locator("[data-request-state]").inner_text() == "applied"
        assert "via schedule" in ann.locator("main").inner_text()
        with live.ctx.storage.read() as tx:
            variable = tx.get_variable(project_id, name)
            assert variable is not None
            production = next(lb for lb in tx.list_labels(variable.id) if lb.name == "production")
        assert production.target.version == 2
    finally:
        ann.context.close()
        rob.context.close()
