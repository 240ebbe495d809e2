"""Fixtures of the management API tests: one live server per module, a fresh project per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.manage.live import LiveServer, live_server
from tests.server.support import Project, make_project


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The server of a test module."""
    with live_server(Path(tmp_path_factory.mktemp("setpoint-manage"))) as server:
        yield server


@pytest.fixture
def project(live: LiveServer) -> Project:
    """A fresh project with a read,write key and a read-only key."""
    return make_project(live.ctx)


@pytest.fixture
def api(live: LiveServer, project: Project) -> Iterator[httpx.Client]:
    """A client authenticated with the project's read,write key."""
    with httpx.Client(base_url=live.url, headers=project.headers(), timeout=10) as client:
        yield client


@pytest.fixture
def ro_api(live: LiveServer, project: Project) -> Iterator[httpx.Client]:
    """A client authenticated with the project's read-only key."""
    with httpx.Client(base_url=live.url, headers=project.headers(project.ro_key), timeout=10) as client:
        yield client
