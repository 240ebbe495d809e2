"""The real-server fixtures shared by the remote and the usage tests (imported by their conftest modules): a
``setpoint serve`` process per test module, a fresh project per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.remote.support import Project, ServerProc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """A ``setpoint serve`` process shared by one test module."""
    proc = ServerProc(data_dir=tmp_path_factory.mktemp("setpoint-server"))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def project(server: ServerProc) -> Project:
    """A fresh project (so tests do not see each other's variables)."""
    return server.project()
