"""Run the real Logfire SDK against a test server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import logfire
from logfire.variables.remote import LogfireRemoteVariableProvider


@contextmanager
def logfire_against(url: str, api_key: str, polling_interval: float = 60) -> Iterator[Any]:
    """Configure the Logfire SDK to use ``url`` as its variables backend; yields the Logfire instance."""
    instance = logfire.configure(
        send_to_logfire=False,
        console=False,
        api_key=api_key,
        advanced=logfire.AdvancedOptions(base_url=url),
        variables=logfire.VariablesOptions(polling_interval=polling_interval, block_before_first_resolve=True),
        local=True,
    )
    try:
        yield instance
    finally:
        instance.config.get_variable_provider().shutdown(timeout_millis=2000)


def remote_provider(instance: Any) -> LogfireRemoteVariableProvider:
    """The remote variable provider of a configured Logfire instance."""
    provider = instance.config.get_variable_provider()
    assert isinstance(provider, LogfireRemoteVariableProvider)
    return provider


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> float:
    """Wait until ``predicate()`` is true; returns the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start
