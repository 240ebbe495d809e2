"""Helpers shared by the test suites (import as ``from tests.support import ...``)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ALL = os.environ.get("SETPOINT_TEST_REQUIRE_ALL") == "1"
POSTGRES_URL = os.environ.get("SETPOINT_TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/test")
CHROMIUM_PATH = os.environ.get("SETPOINT_TEST_CHROMIUM", "/usr/bin/chromium")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail where every dependency is required (CI)."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (SETPOINT_TEST_REQUIRE_ALL=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)
