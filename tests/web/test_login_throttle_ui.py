"""Login throttling as a person at the login page sees it (issue 9, item 5), in a real browser: after the
free failures the page says when to try again, refuses even the right password until then (429 with
Retry-After), and lets the person in afterwards."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from setpoint._server.services.login_throttle import ACCOUNT_FREE_FAILURES
from tests.manage.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page


def _submit(page: Page, password: str) -> int:
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Log in").click()
    status = answer.value.status
    assert isinstance(status, int)
    return status


def test_the_login_page_says_when_to_try_again(context: BrowserContext, live: LiveServer) -> None:
    page = context.new_page()
    page.goto(f"{live.url}/login")
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        assert _submit(page, "not-the-password") == 401
        assert "Wrong username or password." in page.get_by_role("alert").inner_text()
    assert _submit(page, "not-the-password") == 401
    alert = page.get_by_role("alert").inner_text()
    assert "Try again in 1 second" in alert and "UTC" in alert

    assert _submit(page, live.admin_password) == 429  # right password, still refused
    alert = page.get_by_role("alert").inner_text()
    assert "Too many failed logins" in alert and "Try again in 1 second" in alert

    time.sleep(1.2)
    page.get_by_label("Password").fill(live.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/variables")
