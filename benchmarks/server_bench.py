"""Server benchmark: config fetches per second (with and without ETag) and write-to-SSE-event latency.

Run ``python benchmarks/server_bench.py`` (``--quick`` for a short smoke run, ``--record`` to rewrite the
``## Server`` section of ``BENCHMARKS.md``, ``--no-postgres`` to skip PostgreSQL).

Each run starts real ``setpoint serve`` processes (one uvicorn worker each) on a free port:

* **fetch**: a project with 20 variables (3 labels, a rollout and an override each). Load comes from a
  minimal asyncio HTTP/1.1 keep-alive client (``--connections`` connections, default 32) in this process,
  sending ``GET /v1/variables/`` with a valid API key for ``--seconds`` seconds after a warm-up:
  without ``If-None-Match`` (200 + the full body) and with the current ETag (304, no body), in interleaved
  rounds (``--rounds``, median reported). Every response's status is checked.
* **write -> SSE event**: a raw SSE reader is connected to ``/v1/variable-updates/``; then, one at a time,
  200 writes move a label to a new version (``PUT /v1/variables/{name}/labels/{label}/``). For each write
  the time from just before sending the request to the arrival of its ``data:`` event at the reader is
  recorded; p50/p99 are reported. On PostgreSQL it is measured twice: reader on the same server as the
  writes, and reader on a second server process sharing the database (LISTEN/NOTIFY).

The client runs on the same machine as the server, so req/s is a lower bound of what the server can do.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _report import add_record_option, cpu_model, load_average, record_section, serving

REPO = Path(__file__).resolve().parents[1]
SECTION_TITLE = "## Server"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from setpoint._server.services import keys  # noqa: E402
from setpoint._server.services.changes import ChangeSink  # noqa: E402
from setpoint._server.services.context import ServiceContext  # noqa: E402
from setpoint._server.storage import open_storage  # noqa: E402

POSTGRES_URL = os.environ.get("SETPOINT_TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(database_url: str, data_dir: Path) -> Iterator[str]:
    """A ``setpoint serve`` process; yields its base URL."""
    port = free_port()
    code = (
        "import sys; from pathlib import Path; from setpoint._cli.serve import serve; "
        "serve(host='127.0.0.1', port=int(sys.argv[1]), data_dir=Path(sys.argv[2]), database_url=sys.argv[3], "
        "log_level='warning')"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "SETPOINT_ADMIN_PASSWORD": "bench"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(port), str(data_dir), database_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with serving(proc, f"http://127.0.0.1:{port}") as url:
        yield url


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database."""
    import psycopg
    from psycopg import sql

    name = f"setpoint_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_URL.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_key(database_url: str) -> str:
    """A read,write key of a new project."""
    storage = open_storage(database_url)
    storage.migrate()
    try:
        ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"))
        return keys.create_key(ctx, f"bench-{uuid.uuid4().hex[:6]}", frozenset({"read", "write"}), "bench").token
    finally:
        storage.dispose()


def populate(url: str, key: str, count: int = 20) -> None:
    """``count`` variables with three labels, a rollout and an override each."""
    headers = {"Authorization": f"bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i in range(count):
            value = {"instructions": f"Be helpful #{i}.", "model": "gpt", "temperature": 0.5 + i / 100}
            body = {
                "name": f"var_{i}",
                "description": f"variable {i}",
                "json_schema": {"type": "object"},
                "labels": {
                    "prod": {"target_type": "version", "serialized_value": json.dumps(value)},
                    "canary": {"target_type": "version", "serialized_value": json.dumps({**value, "model": "x"})},
                    "edge": {"target_type": "latest"},
                },
                "rollout": {"labels": {"prod": 0.9, "canary": 0.1}},
                "overrides": [
                    {
                        "conditions": [{"kind": "value-is-in", "attribute": "plan", "values": ["pro", "team"]}],
                        "rollout": {"labels": {"canary": 1.0}},
                    }
                ],
            }
            client.post("/v1/variables/", json=body).raise_for_status()


async def _connection(host: str, port: int, request: bytes, expected: int, stop_at: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            if status != expected:
                raise RuntimeError(f"unexpected status {status}")
            match = re.search(rb"(?i)content-length: *(\d+)", head)
            if match and int(match.group(1)):
                await reader.readexactly(int(match.group(1)))
            done += 1
    finally:
        counts.append(done)
        writer.close()


def fetch_rate(url: str, key: str, etag: str | None, seconds: float, connections: int) -> float:
    """Requests per second of ``GET /v1/variables/`` over keep-alive connections."""
    host, port = url.removeprefix("http://").split(":")
    lines = [
        "GET /v1/variables/ HTTP/1.1",
        f"Host: {host}:{port}",
        f"Authorization: bearer {key}",
        "User-Agent: setpoint-bench",
    ]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    expected = 304 if etag else 200

    async def run(duration: float) -> float:
        counts: list[int] = []
        start = time.monotonic()
        await asyncio.gather(
            *(_connection(host, int(port), request, expected, start + duration, counts) for _ in range(connections))
        )
        return sum(counts) / (time.monotonic() - start)

    asyncio.run(run(min(0.5, seconds)))  # warm-up
    return asyncio.run(run(seconds))


class SSEReader:
    """Reads ``data:`` lines from the SSE endpoint in a thread, timestamping each."""

    def __init__(self, url: str, key: str) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._run, args=(url, key), daemon=True)
        self._thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("SSE stream did not open")

    def _run(self, url: str, key: str) -> None:
        headers = {"Authorization": f"bearer {key}"}
        try:
            with self._client.stream("GET", f"{url}/v1/variable-updates/", headers=headers) as response:
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.ready.set()
                    elif line.startswith("data:"):
                        with self.cond:
                            self.arrivals.append((time.perf_counter(), json.loads(line[5:])))
                            self.cond.notify_all()
        except httpx.HTTPError:
            pass

    def wait_for(self, count: int, timeout: float = 10) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.arrivals) >= count, timeout):
                raise RuntimeError("SSE event did not arrive")
            return self.arrivals[count - 1][0]

    def close(self) -> None:
        self._client.close()


def write_to_event(write_url: str, read_url: str, key: str, changes: int) -> list[float]:
    """Milliseconds from sending each write to its SSE event arriving at a reader on ``read_url``."""
    headers = {"Authorization": f"bearer {key}"}
    name = f"sse_{uuid.uuid4().hex[:6]}"
    samples: list[float] = []
    with httpx.Client(base_url=write_url, headers=headers, timeout=30) as client:
        client.post("/v1/variables/", json={"name": name}).raise_for_status()
        reader = SSEReader(read_url, key)
        try:
            for i in range(changes):
                start = time.perf_counter()
                body = {"target_type": "version", "serialized_value": json.dumps(i)}
                client.put(f"/v1/variables/{name}/labels/prod/", json=body).raise_for_status()
                arrived = reader.wait_for(i + 1)
                samples.append((arrived - start) * 1000)
        finally:
            reader.close()
    return samples


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


@dataclass
class FetchRow:
    backend: str
    body_bytes: int
    rps_200: float
    rps_304: float


@dataclass
class SSERow:
    backend: str
    where: str
    samples: list[float]


def bench_backend(
    backend: str, database_url: str, data_dir: Path, args: argparse.Namespace
) -> tuple[FetchRow, list[SSERow]]:
    key = create_key(database_url)
    sse_rows: list[SSERow] = []
    with server(database_url, data_dir / "a") as url:
        populate(url, key)
        first = httpx.get(f"{url}/v1/variables/", headers={"Authorization": f"bearer {key}"})
        etag = first.headers["etag"]
        # Interleaved rounds, median of each: other work on a shared machine hits both rows alike.
        rates_200: list[float] = []
        rates_304: list[float] = []
        for round_ in range(args.rounds):
            print(f"[{backend}] fetch round {round_ + 1}/{args.rounds} (200, then 304) ...", flush=True)
            rates_200.append(fetch_rate(url, key, None, args.seconds / args.rounds, args.connections))
            rates_304.append(fetch_rate(url, key, etag, args.seconds / args.rounds, args.connections))
        rps_200, rps_304 = statistics.median(rates_200), statistics.median(rates_304)
        print(f"[{backend}] write -> SSE event, {args.changes} changes ...", flush=True)
        sse_rows.append(SSERow(backend, "same server", write_to_event(url, url, key, args.changes)))
        if backend == "postgresql":
            with server(database_url, data_dir / "b") as other:
                print(f"[{backend}] write -> SSE event across processes ...", flush=True)
                sse_rows.append(SSERow(backend, "other server", write_to_event(url, other, key, args.changes)))
    return FetchRow(backend, len(first.content), rps_200, rps_304), sse_rows


def machine() -> str:
    cpu = cpu_model()
    load = load_average()
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}; load average at start {load:.1f}"
    )


def report(fetch: list[FetchRow], sse: list[SSERow], args: argparse.Namespace, started: str, where: str) -> str:
    lines = [
        f"`python benchmarks/server_bench.py{' --quick' if args.quick else ''}` on {started} UTC. Machine: {where}.",
        "One `setpoint serve` process (one uvicorn worker); the load client runs on the same machine "
        f"({args.connections} keep-alive connections; per row the median of {args.rounds} interleaved rounds, "
        f"{args.seconds:g} s in all). A project of 20 variables. The client shares the 2 CPUs with the server, "
        "so req/s is a lower bound of the server's capacity.",
        "",
        "### Config fetch (`GET /v1/variables/`)",
        "",
        "| database | body | req/s, full body (200) | req/s, `If-None-Match` (304) |",
        "|---|---:|---:|---:|",
    ]
    for row in fetch:
        lines.append(f"| {row.backend} | {row.body_bytes:,} B | {row.rps_200:,.0f} | {row.rps_304:,.0f} |")
    lines += [
        "",
        "Both are served from the in-memory snapshot: no database query per fetch, 200 or 304",
        "(`tests/server/test_snapshot.py` counts the queries).",
        "",
        f"### Write to SSE event ({args.changes} changes, one at a time)",
        "",
        "| database | SSE client on | p50 | p99 | max |",
        "|---|---|---:|---:|---:|",
    ]
    for r in sse:
        lines.append(
            f"| {r.backend} | {r.where} | {statistics.median(r.samples):.1f} ms | "
            f"{percentile(r.samples, 99):.1f} ms | {max(r.samples):.1f} ms |"
        )
    lines += [
        "",
        "Measured from sending the write (`PUT /v1/variables/{name}/labels/prod/`, a new version) to its",
        "`data:` event arriving at a connected SSE client, so it includes the write transaction itself.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2 s per fetch row, 50 changes")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved fetch rounds (median reported)")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    add_record_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.changes = 2.0, 50
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    where = machine()
    fetch: list[FetchRow] = []
    sse: list[SSERow] = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        row, rows = bench_backend("sqlite", f"sqlite:///{data_dir / 'bench.db'}", data_dir, args)
        fetch.append(row)
        sse += rows
        if not args.no_postgres:
            with postgres_database() as url:
                row, rows = bench_backend("postgresql", url, data_dir, args)
                fetch.append(row)
                sse += rows
    section = report(fetch, sse, args, started, where)
    print(section)
    if args.record:
        record_section(Path(args.record), SECTION_TITLE, section)
        print(f"recorded in {args.record}")


if __name__ == "__main__":
    main()
