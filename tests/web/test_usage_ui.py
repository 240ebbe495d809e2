"""The usage pages in Chromium: the chart of resolutions per label with the configured rollout beside the observed
split, last evaluated and processes, code references, "last seen" / stale / not-in-code on the list, the stale
page, and the observed split on the Targeting tab."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from setpoint._server.services import editing, lifecycle
from setpoint._server.storage import schema
from setpoint._server.storage.records import LabelTarget
from setpoint._server.storage.sql import SqlStorage
from setpoint._server.storage.usage import CountRow
from tests.manage.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _seed(live: LiveServer) -> int:
    ctx = live.ctx
    with ctx.storage.read() as tx:
        project = tx.get_project("default")
    assert project is not None
    lifecycle.create_variable(ctx, project.id, "checkout_flow", "tests", kind="text")
    for value in ("old", "new"):
        editing.create_version(ctx, project.id, "checkout_flow", f'"{value}"', "tests")
    editing.set_label(ctx, project.id, "checkout_flow", "control", LabelTarget("version", version=1), "tests")
    editing.set_label(ctx, project.id, "checkout_flow", "treatment", LabelTarget("version", version=2), "tests")
    editing.set_targeting(ctx, project.id, "checkout_flow", {"labels": {"control": 0.9, "treatment": 0.1}}, [], "tests")
    now = datetime.now(UTC)
    for hours_ago, control, treatment in ((3, 600, 400), (1, 300, 200)):
        ctx.storage.usage.record(
            project.id,
            [
                CountRow("checkout_flow", "control", 1, "resolved", control),
                CountRow("checkout_flow", "treatment", 2, "resolved", treatment),
            ],
            instance_id=f"proc-{hours_ago}",
            sdk="setpoint-python/0.1.0",
            at=now - timedelta(hours=hours_ago),
        )
    ctx.storage.usage.replace_code_refs(
        project.id,
        "shop",
        [("checkout_flow", "shop/checkout.py", 12, "setpoint.var")],
        commit_sha="abc",
        branch="main",
        at=now,
    )
    return project.id


def test_usage_journey(page: Page, live: LiveServer) -> None:
    project_id = _seed(live)
    lifecycle.create_variable(live.ctx, project_id, "forgotten_flag", "tests", kind="boolean")

    page.goto(f"{live.url}/p/default/variables/checkout_flow/usage?span=24h")
    assert page.locator("#total").inner_text() == "1,500"
    assert page.locator("#processes").inner_text() == "2"
    bars = page.locator("svg rect.usage-bar")
    assert bars.count() == 4  # two labels in two hours
    titles = sorted(bars.nth(i).locator("title").text_content() or "" for i in range(bars.count()))
    assert any(t.endswith("control 600") for t in titles) and any(t.endswith("treatment 200") for t in titles)
    split = page.locator("#split tbody tr")
    assert split.nth(0).inner_text().split() == ["control", "90.0%", "60.0%"]
    assert split.nth(1).inner_text().split() == ["treatment", "10.0%", "40.0%"]
    assert "shop shop/checkout.py:12" in page.locator(".code-refs").inner_text()

    page.goto(f"{live.url}/p/default/variables/checkout_flow/targeting")
    observed = page.locator("#observed-split").inner_text()
    assert "control 60.0%" in observed and "treatment 40.0%" in observed

    page.goto(f"{live.url}/p/default/variables")
    row = page.locator("tr", has=page.locator("a.name", has_text="checkout_flow"))
    assert "ago" in row.locator("td.last-seen").inner_text()
    forgotten = page.locator("tr", has=page.locator("a.name", has_text="forgotten_flag"))
    assert "never" in forgotten.locator("td.last-seen").inner_text()
    assert forgotten.locator(".badge", has_text="not in code").count() == 1
    assert row.locator(".badge", has_text="not in code").count() == 0

    # Make forgotten_flag old: never evaluated in 30 days -> stale, on the list and the stale page.
    assert isinstance(live.ctx.storage, SqlStorage)
    with live.ctx.storage.engine.begin() as conn:
        conn.execute(
            schema.variables.update()
            .where(schema.variables.c.name == "forgotten_flag")
            .values(created_at=datetime.now(UTC) - timedelta(days=45))
        )
    page.goto(f"{live.url}/p/default/variables")
    assert (
        page.locator("tr", has=page.locator("a.name", has_text="forgotten_flag")).locator(".badge-stale").count() == 1
    )
    page.locator("#stale-link").click()
    page.wait_for_url("**/stale")
    table = page.locator("#stale-table").inner_text()
    assert "forgotten_flag" in table and "never evaluated" in table and "checkout_flow" not in table
