"""RemoteProvider against a real server: first fetch, ETag/304, SSE propagation, restarts, cache, bad keys."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from setpoint._remote.options import RemoteOptions
from setpoint._remote.provider import RemoteProvider
from setpoint.exceptions import AuthenticationError, ServerUnreachableError
from tests.remote.support import Project, ServerProc, wait_until
from tests.server.support import free_port

pytestmark = pytest.mark.slow


def value_of(provider: RemoteProvider, name: str) -> object:
    compiled = provider.compiled
    if compiled is None:
        return None
    serialized = compiled.evaluate(name, "user-1").serialized_value
    return None if serialized is None else json.loads(serialized)


def has_value(provider: RemoteProvider, name: str, expected: object) -> bool:
    return value_of(provider, name) == expected


def make_provider(url: str, key: str, **kwargs: object) -> RemoteProvider:
    options = RemoteOptions(url=url, api_key=key, polling_interval=timedelta(seconds=60), **kwargs)  # type: ignore[arg-type]
    return RemoteProvider(options)


def test_first_fetch_serves_the_server_config(project: Project) -> None:
    project.put_variable("greeting", "hello", create=True)
    provider = make_provider(project.server.url, project.read_key)
    provider.start()
    try:
        assert provider.wait_ready(10)
        assert value_of(provider, "greeting") == "hello"
        assert provider.source == "server"
    finally:
        provider.shutdown(5)


def test_unchanged_config_is_not_downloaded_again(project: Project) -> None:
    project.put_variable("flag", True, create=True)
    provider = make_provider(project.server.url, project.read_key, sse=False)
    provider.refresh(force=True)
    first = provider.compiled
    assert first is not None and provider.debug_state()["etag"]
    provider.refresh(force=True)  # 304 Not Modified: nothing is recompiled
    assert provider.compiled is first
    provider.refresh()  # within the polling interval: no request at all
    assert provider.compiled is first
    project.put_variable("flag", False)
    provider.refresh(force=True)
    assert provider.compiled is not first
    assert value_of(provider, "flag") is False
    provider.shutdown(5)


def test_sse_brings_a_change_long_before_the_next_poll(project: Project) -> None:
    project.put_variable("limit", 1, create=True)
    provider = make_provider(project.server.url, project.read_key)
    provider.start()
    try:
        assert provider.wait_ready(10)
        assert wait_until(lambda: provider.sse_connected, 5)
        time.sleep(0.2)  # the subscription is registered once the stream is open
        for expected in (2, 3, 4):
            started = time.monotonic()
            project.put_variable("limit", expected)
            assert wait_until(partial(has_value, provider, "limit", expected), 5), f"no update to {expected}"
            assert time.monotonic() - started < 5  # the poll interval is 60 s
    finally:
        provider.shutdown(5)


def test_server_killed_and_restarted_mid_stream(own_server: ServerProc) -> None:
    project = own_server.project()
    project.put_variable("mode", "before", create=True)
    provider = make_provider(own_server.url, project.read_key)
    provider.start()
    try:
        assert provider.wait_ready(10)
        assert wait_until(lambda: provider.sse_connected, 5)
        own_server.kill()
        provider.refresh(force=True)  # fails, never raises
        assert isinstance(provider.last_error, ServerUnreachableError)
        assert wait_until(lambda: not provider.sse_connected, 5)
        assert value_of(provider, "mode") == "before"  # the last values keep being served
        time.sleep(1.0)
        assert value_of(provider, "mode") == "before"
        own_server.start()
        project.put_variable("mode", "after")
        assert wait_until(lambda: value_of(provider, "mode") == "after", 15), provider.debug_state()
        assert provider.last_error is None
    finally:
        provider.shutdown(5)


def test_cache_file_serves_when_the_server_is_down_at_start(project: Project, tmp_path: Path) -> None:
    project.put_variable("prompt", {"text": "cached"}, create=True)
    cache = tmp_path / "cache" / "variables.json"
    provider = make_provider(project.server.url, project.read_key, cache_path=cache)
    provider.start()
    assert provider.wait_ready(10)
    provider.shutdown(5)
    assert cache.exists()

    dead = make_provider(f"http://127.0.0.1:{free_port()}", project.read_key, cache_path=cache, sse=False)
    dead.start()
    try:
        assert dead.wait_ready(10)
        assert dead.source == "cache"
        assert value_of(dead, "prompt") == {"text": "cached"}
        assert isinstance(dead.last_error, ServerUnreachableError)
    finally:
        dead.shutdown(5)


def test_each_change_is_appended_to_the_cache_and_a_restart_serves_the_last(project: Project, tmp_path: Path) -> None:
    for i in range(30):
        project.put_variable(f"other_{i}", {"n": i, "text": "x" * 300}, create=True)
    project.put_variable("prompt", "v1", create=True)
    cache = tmp_path / "variables.json"
    provider = make_provider(project.server.url, project.read_key, cache_path=cache, sse=False)
    try:
        provider.refresh(force=True)  # the whole config: a snapshot
        assert provider.cache is not None and provider.cache.snapshots_written == 1
        snapshot = cache.stat().st_size
        for value in ("v2", "v3", "v4"):
            written = provider.cache.bytes_written
            project.put_variable("prompt", value)
            provider.refresh(force=True)  # a delta: one journal line
            assert value_of(provider, "prompt") == value
            assert 0 < provider.cache.bytes_written - written < snapshot / 10
        assert provider.cache.snapshots_written == 1
        assert provider.compiled is not None and provider.compiled.recompiled == 1
        assert cache.with_name(cache.name + ".journal").read_bytes().count(b"\n") == 3
        provider.cache.forget_snapshot()  # as after a failed write: the next change rewrites the snapshot
        project.put_variable("prompt", "v5")
        provider.refresh(force=True)
        assert provider.cache.snapshots_written == 2
    finally:
        provider.shutdown(5)
    assert cache.with_name(cache.name + ".journal").read_bytes() == b""

    dead = make_provider(f"http://127.0.0.1:{free_port()}", project.read_key, cache_path=cache, sse=False)
    try:
        dead.refresh(force=True)
        assert dead.source == "cache" and value_of(dead, "prompt") == "v5"
        assert value_of(dead, "other_29") == {"n": 29, "text": "x" * 300}
    finally:
        dead.shutdown(5)


def test_server_down_and_no_cache_serves_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    provider = make_provider(f"http://127.0.0.1:{free_port()}", "k", cache_path=tmp_path / "missing.json")
    caplog.set_level(logging.WARNING, logger="setpoint.remote")
    provider.start()
    try:
        assert provider.wait_ready(10) is False  # returns promptly: the first attempt failed
        assert provider.compiled is None
        time.sleep(1.0)  # the stream retries meanwhile: still one message
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "serving the code defaults" in warnings[0], warnings
    finally:
        provider.shutdown(5)


def test_wrong_key_is_reported_not_raised(project: Project) -> None:
    provider = make_provider(project.server.url, "sp_wrong_key_000000000000000000000", sse=False)
    provider.start()
    try:
        assert provider.wait_ready(10) is False
        assert isinstance(provider.last_error, AuthenticationError)
    finally:
        provider.shutdown(5)


def test_refresh_async(project: Project) -> None:
    project.put_variable("n", 5, create=True)
    provider = make_provider(project.server.url, project.read_key, sse=False)
    asyncio.run(provider.refresh_async(force=True))
    assert value_of(provider, "n") == 5
    project.put_variable("n", 6)
    asyncio.run(provider.refresh_async())  # not due yet
    assert value_of(provider, "n") == 5
    asyncio.run(provider.refresh_async(force=True))
    assert value_of(provider, "n") == 6
    provider.shutdown(5)


def test_shutdown_is_prompt_and_idempotent(project: Project) -> None:
    provider = make_provider(project.server.url, project.read_key)
    provider.start()
    assert provider.wait_ready(10)
    assert wait_until(lambda: provider.sse_connected, 5)
    started = time.monotonic()
    provider.shutdown(5)
    provider.shutdown(5)
    assert time.monotonic() - started < 1  # the blocked stream read is interrupted, not waited for
    assert provider._poller is not None and not provider._poller.is_alive()
    assert provider._sse_thread is not None and not provider._sse_thread.is_alive()


def test_one_warning_when_the_server_goes_away_and_one_when_it_is_back(
    own_server: ServerProc, caplog: pytest.LogCaptureFixture
) -> None:
    """A long-running app: the stream drops, every retry (SSE reconnects, polls) fails; the log says so once."""
    project = own_server.project()
    project.put_variable("mode", "before", create=True)
    provider = RemoteProvider(
        RemoteOptions(url=own_server.url, api_key=project.read_key, polling_interval=timedelta(seconds=0.2))
    )
    caplog.set_level(logging.DEBUG, logger="setpoint.remote")
    provider.start()
    try:
        assert provider.wait_ready(10) and wait_until(lambda: provider.sse_connected, 5)
        own_server.kill()

        def retries() -> int:
            return sum("failed again" in r.getMessage() for r in caplog.records)

        assert wait_until(lambda: retries() >= 5, 15)  # polls every 0.2 s, all failing
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "cannot reach the Setpoint server" in warnings[0] and "retrying in the background" in warnings[0]
        assert "serving the last values" in warnings[0]
        assert "RemoteOptions(url=...)" in warnings[0] and "--url" not in warnings[0]  # the SDK's own words

        own_server.start()
        assert wait_until(lambda: provider.sse_connected and provider.last_error is None, 15)
        time.sleep(0.5)  # more polls, now succeeding: no more messages
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 2, warnings
        assert warnings[1].startswith(f"reconnected to the Setpoint server at {own_server.url}")
    finally:
        provider.shutdown(5)
