"""The Webhooks pages in Chromium: create a webhook, see its deliveries arrive (at a real receiver process that
verifies signatures), redeliver one, send a test event, and a refused URL keeping what was typed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from setpoint._server.services import lifecycle
from tests.manage.live import LiveServer, live_server
from tests.server.webhook_receiver import Receiver

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server allowed to call the local receiver."""
    with live_server(Path(tmp_path_factory.mktemp("setpoint-web")), webhooks_allow_private=True) as server:
        yield server


def _reload_until(page: Page, selector: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while page.locator(selector).count() == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        page.reload()
    assert page.locator(selector).count() > 0, selector


def test_webhook_journey(page: Page, live: LiveServer, receiver: Receiver) -> None:
    page.get_by_role("link", name="Webhooks").click()
    page.wait_for_url("**/webhooks")
    assert page.get_by_text("No webhooks yet.").is_visible()

    page.get_by_label("URL").fill("ftp://example.com/hook")
    page.get_by_label("Description").fill("ops channel")
    page.get_by_role("button", name="Create webhook").click()
    assert "http:// or https://" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Description").input_value() == "ops channel"  # kept as typed

    page.get_by_label("URL").fill(f"{receiver.url}/h/ui")
    for event in ("segment.created", "segment.updated", "segment.deleted"):
        page.get_by_role("checkbox", name=event).uncheck()
    page.get_by_role("button", name="Create webhook").click()
    page.wait_for_url("**/webhooks/*")
    assert "Webhook created" in page.locator("body").inner_text()
    page.get_by_text("Show the secret").click()
    secret = page.locator("#wh-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    receiver.configure("ui", secret)
    assert page.get_by_text("Nothing sent yet.").is_visible()

    with live.ctx.storage.read() as tx:
        project = tx.get_project("default")
    assert project is not None
    lifecycle.create_variable(live.ctx, project.id, "hooked", "tests", kind="text")
    [first] = receiver.wait_for("ui", 1)
    assert first["verified"] and first["body"]["type"] == "variable.created"
    _reload_until(page, "tr[data-status=delivered]")
    row = page.locator("tr[data-status=delivered]").first
    assert "variable.created" in row.inner_text() and "HTTP 200" in row.inner_text()
    row.get_by_text("Request and response").click()
    assert '"name": "hooked"' in row.locator("pre").first.inner_text()

    row.get_by_role("button", name="Redeliver").click()
    assert "Redelivery queued" in page.locator("body").inner_text()
    got = receiver.wait_for("ui", 2)
    assert got[1]["id"] == first["id"] and got[1]["verified"]

    page.get_by_role("button", name="Send test event").click()
    got = receiver.wait_for("ui", 3)
    assert got[2]["body"]["type"] == "webhook.test" and got[2]["verified"]
    _reload_until(page, "tr[data-status=delivered] >> text=webhook.test")
    assert page.locator("tr[data-delivery-id]").count() == 3
    assert page.locator("text=(redelivery)").count() == 1
