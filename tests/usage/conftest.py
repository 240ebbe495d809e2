"""Fixtures of the usage tests: one real server per module, a fresh project (with keys) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.remote.support import Project, ServerProc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """A ``setpoint serve`` process shared by one test module."""
    proc = ServerProc(data_dir=tmp_path_factory.mktemp("setpoint-usage"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def project(server: ServerProc) -> Project:
    """A fresh project."""
    return server.project()
