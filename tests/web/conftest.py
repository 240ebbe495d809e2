"""Browser test fixtures: a real server (uvicorn in a thread, temporary SQLite, known admin password) and
headless Chromium driven by Playwright's sync API. Without Chromium or Playwright these tests skip with the
reason (or fail where ``SETPOINT_TEST_REQUIRE_ALL=1``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.manage.live import LiveServer, live_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The server of a test module (its own database)."""
    with live_server(Path(tmp_path_factory.mktemp("setpoint-web"))) as server:
        yield server


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """Headless Chromium (Debian's), one per module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def login(context: BrowserContext, live: LiveServer) -> Page:
    """A new page of ``context``, logged in as the admin."""
    page = context.new_page()
    page.goto(f"{live.url}/")
    page.get_by_label("Password").fill(live.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/variables")
    return page


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (its own cookies)."""
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, live: LiveServer) -> Page:
    """A logged-in page."""
    return login(context, live)
