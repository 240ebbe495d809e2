"""Shared fixtures.

Tests that need PostgreSQL or Chromium skip with their reason on a machine without them, except where
``SETPOINT_TEST_REQUIRE_ALL=1`` (set by ``.ci/run``): there a missing dependency fails the test instead
(`tests.support.skip_or_fail`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from tests.server.support import free_port
from tests.server.webhook_receiver import Receiver
from tests.support import CHROMIUM_PATH, POSTGRES_URL, skip_or_fail


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the reachable PostgreSQL server's base database (skips, or fails in CI, when there is none)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dev dependency
        skip_or_fail("psycopg is not installed")
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}".strip())
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards. Yields its URL."""
    import psycopg
    from psycopg import sql

    name = f"setpoint_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = postgres_server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of a Chromium binary for Playwright (skips, or fails in CI, when there is none)."""
    path = CHROMIUM_PATH if os.path.exists(CHROMIUM_PATH) else shutil.which("chromium")
    if not path:
        skip_or_fail(f"Chromium is not installed at {CHROMIUM_PATH} (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        skip_or_fail("playwright is not installed (pip install playwright)")
    return path


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A webhook receiver process (verifies signatures with `standardwebhooks`), one per test module."""
    found = Receiver(free_port())
    found.start()
    try:
        yield found
    finally:
        found.stop()
