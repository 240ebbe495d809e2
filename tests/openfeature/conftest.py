"""Fixtures of the OpenFeature provider tests: one in-process server per test module, a fresh project per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.segments.support import App, running_app
from tests.server.support import Project, make_project


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """A server (uvicorn in a thread) on a fresh SQLite database."""
    with running_app(tmp_path_factory.mktemp("openfeature")) as running:
        yield running


@pytest.fixture
def project(app: App) -> Project:
    """A fresh project with a read,write and a read-only key."""
    return make_project(app.ctx)
