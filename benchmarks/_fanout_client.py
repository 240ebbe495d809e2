"""One client process of the SSE fan-out benchmark (``benchmarks/scale.py`` starts several, so that reading the
events is not the bottleneck): ``python _fanout_client.py PORT TOKEN COUNT``.

Opens COUNT streams to ``/v1/variable-updates/`` (raw asyncio protocols: no task per connection), prints
``connected <ok> <failed>``, then waits for a line on stdin (the write was sent), and prints the wall-clock
times (``time.time()``) at which each stream's first ``data:`` line arrived, as JSON, once every stream got one
or 30 s after that line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import cast

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
    uvloop = None  # type: ignore[assignment]


class _Tally:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.expected = -1
        self.complete = asyncio.Event()

    def add(self, at: float) -> None:
        self.times.append(at)
        if len(self.times) == self.expected:
            self.complete.set()


class _Stream(asyncio.Protocol):
    def __init__(self, request: bytes, connected: asyncio.Future[bool], tally: _Tally) -> None:
        self._request = request
        self._connected = connected
        self._tally = tally
        self._buffer = b""
        self._got = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast("asyncio.WriteTransport", transport).write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._got:
            return
        self._buffer += data
        if not self._connected.done() and b": connected" in self._buffer:
            self._connected.set_result(True)
        if b"\ndata:" in self._buffer:
            self._tally.add(time.time())
            self._got = True
            self._buffer = b""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._connected.done():
            self._connected.set_result(False)


async def _main(port: int, token: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /v1/variable-updates/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    tally = _Tally()
    transports: list[asyncio.BaseTransport] = []
    opening = asyncio.Semaphore(50)
    failed = 0

    async def connect() -> None:
        nonlocal failed
        async with opening:
            connected: asyncio.Future[bool] = loop.create_future()
            try:
                transport, _ = await loop.create_connection(
                    lambda: _Stream(request, connected, tally), "127.0.0.1", port
                )
                transports.append(transport)
                if not await asyncio.wait_for(connected, 60):
                    failed += 1
            except (OSError, TimeoutError):
                failed += 1

    await asyncio.gather(*(connect() for _ in range(count)))
    print(f"connected {count - failed} {failed}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    tally.expected = count - failed
    if len(tally.times) < tally.expected:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.complete.wait(), 30)
    print(json.dumps(tally.times), flush=True)
    for transport in transports:
        transport.close()


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=None if uvloop is None else uvloop.new_event_loop) as runner:
        runner.run(_main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
