"""Fixtures of the remote tests: a real server subprocess per module, a fresh project per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from setpoint._sdk import state as sdk_state
from setpoint._sdk.configure import shutdown
from setpoint._sdk.providers import NoOpProvider
from setpoint._sdk.registry import clear_registry, registered_variables, restore_registry
from tests.remote.fixtures import project, server
from tests.remote.support import ServerProc

__all__ = ["isolated_sdk", "own_server", "project", "server"]


@pytest.fixture(autouse=True)
def isolated_sdk() -> Iterator[None]:
    """Each test starts unconfigured with no variables; afterwards the suite's SDK state and registry are back."""
    saved_variables = registered_variables()
    saved_state = sdk_state.replace_state(sdk_state.SdkState(NoOpProvider()))
    clear_registry()
    try:
        yield
    finally:
        shutdown(5)
        sdk_state.replace_state(saved_state)
        restore_registry(saved_variables)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProc]:
    """A server for one test (which may kill and restart it)."""
    proc = ServerProc(data_dir=tmp_path / "server-data", keepalive=2.0)
    proc.data_dir.mkdir()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
