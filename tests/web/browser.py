"""Browser pages for the web tests: a new context per person, logged in through the login form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.manage.live import LiveServer
from tests.server.people_support import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def logged_in_page(
    browser: Browser, live: LiveServer, email: str | None = None, *, timezone: str | None = None
) -> Page:
    """A page of a new 1360x900 browser context (in ``timezone`` when given), logged in as the person ``email``
    (password ``PASSWORD``) or, without one, as the admin. Close it with ``page.context.close()``."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id=timezone)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{live.url}/login")
    if email is not None:
        page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD if email is not None else live.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/variables")
    return page
