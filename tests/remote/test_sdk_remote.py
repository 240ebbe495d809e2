"""The SDK on a remote provider: `var.get()` follows the server through SSE; refresh; fork safety."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import pytest

from setpoint._remote.options import RemoteOptions
from setpoint._remote.provider import RemoteProvider
from setpoint._sdk.configure import configure, shutdown
from setpoint._sdk.variable import var
from tests.remote.support import Project, wait_until
from tests.server.support import subprocess_env as child_env

pytestmark = pytest.mark.slow


@pytest.fixture
def configured(project: Project) -> Iterator[Project]:
    configure(
        remote=RemoteOptions(url=project.server.url, api_key=project.key, polling_interval=timedelta(seconds=60)),
        instrument=False,
    )
    try:
        yield project
    finally:
        shutdown(5)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_change_reaches_var_get_through_sse(configured: Project) -> None:
    name = unique("limit")
    configured.put_variable(name, 10, create=True)
    limit = var(name, type=int, default=0)
    assert wait_until(lambda: limit.get().value == 10, 5)
    for new in (11, 12, 13):
        started = time.monotonic()
        configured.put_variable(name, new)
        assert wait_until(partial(lambda n: limit.get().value == n, new), 5)
        assert time.monotonic() - started < 5  # polling is every 60 s: this came through SSE
    resolved = limit.get()
    assert resolved.reason == "resolved" and resolved.label == "main" and resolved.version is not None


def test_block_before_first_resolve_serves_remote_value_at_once(project: Project) -> None:
    name = unique("greeting")
    project.put_variable(name, "from server", create=True)
    greeting = var(name, type=str, default="from code")
    configure(remote=RemoteOptions(url=project.server.url, api_key=project.key, sse=False), instrument=False)
    try:
        assert greeting.get().value == "from server"
    finally:
        shutdown(5)


def test_refresh_sync_and_async(project: Project) -> None:
    name = unique("ratio")
    project.put_variable(name, 0.5, create=True)
    ratio = var(name, type=float, default=0.0)
    configure(remote=RemoteOptions(url=project.server.url, api_key=project.key, sse=False), instrument=False)
    try:
        assert ratio.get().value == 0.5
        project.put_variable(name, 0.25)
        ratio.refresh_sync()  # not due: the polling interval has not passed
        assert ratio.get().value == 0.5
        ratio.refresh_sync(force=True)
        assert ratio.get().value == 0.25
        project.put_variable(name, 0.75)
        asyncio.run(ratio.refresh(force=True))
        assert ratio.get().value == 0.75
    finally:
        shutdown(5)


def test_invalid_value_serves_code_default_without_raising(configured: Project) -> None:
    name = unique("count")
    configured.put_variable(name, "not a number", create=True)
    count = var(name, type=int, default=7)
    count.refresh_sync(force=True)
    resolved = count.get()
    assert resolved.value == 7 and resolved.reason == "validation_error"


FORK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import timedelta
    from setpoint._remote.options import RemoteOptions
    from setpoint._sdk.configure import configure
    from setpoint._sdk.variable import var

    url, key, name = sys.argv[1:4]
    configure(remote=RemoteOptions(url=url, api_key=key, polling_interval=timedelta(seconds=60)), instrument=False)
    v = var(name, type=str, default="code")
    assert v.get().value == "one", v.get().value
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"ready\\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and v.get().value != "two":
            time.sleep(0.02)
        os.write(w, (v.get().value + "\\n").encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as pipe:
        print(pipe.readline().strip(), flush=True)  # ready
        sys.stdin.readline()  # the test changed the value
        print(pipe.readline().strip(), flush=True)
    os.waitpid(pid, 0)
    """
)


def test_forked_child_gets_its_own_threads_and_updates(project: Project) -> None:
    name = unique("mode")
    project.put_variable(name, "one", create=True)
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORK_SCRIPT, project.server.url, project.key, name],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # let the child's SSE listener connect
        project.put_variable(name, "two")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "two"  # the child's own threads got the change
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        proc.communicate()
    assert proc.returncode == 0, err


def test_provider_after_fork_hook_restarts_threads(project: Project) -> None:
    """The at-fork handler, called in-process: fresh locks, fresh client, new live threads."""
    provider = RemoteProvider(RemoteOptions(url=project.server.url, api_key=project.key))
    provider.start()
    try:
        assert provider.wait_ready(10)
        old_poller, old_sse, old_lock = provider._poller, provider._sse_thread, provider._fetch_lock
        provider._stop.set()  # stand-in for "the parent's threads do not exist in the child"
        provider._wake.set()
        provider._interrupt_sse()
        assert old_poller is not None and old_sse is not None
        old_poller.join(5)
        old_sse.join(5)
        assert not old_poller.is_alive() and not old_sse.is_alive()
        provider._client.close()  # a real child drops the parent's connections instead (they are shared)
        provider._after_fork()
        assert provider._fetch_lock is not old_lock
        assert provider._poller is not None and provider._poller.is_alive()
        assert provider.compiled is not None and provider.wait_ready(0)
        name = unique("after_fork")
        project.put_variable(name, 1, create=True)
        assert wait_until(lambda: provider.compiled is not None and provider.compiled.get(name) is not None, 5)
    finally:
        provider.shutdown(5)
    assert json.dumps(provider.debug_state())


def test_concurrent_refreshes_and_reads_from_threads(configured: Project) -> None:
    import threading

    name = unique("counter")
    configured.put_variable(name, 0, create=True)
    counter = var(name, type=int, default=-1)
    counter.refresh_sync(force=True)
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker(i: int) -> None:
        try:
            while not stop.is_set():
                if i % 2:
                    counter.refresh_sync(force=True)
                else:
                    assert counter.get().value >= 0
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    try:
        for value in range(1, 6):
            configured.put_variable(name, value)
    finally:
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(10)
    assert errors == []
    assert wait_until(lambda: counter.get().value == 5, 5)
