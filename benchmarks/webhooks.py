"""Webhooks: how long after a write its delivery reaches the receiver, and what webhooks cost the write.

    python benchmarks/webhooks.py [--writes 200] [--postgres] [--record]

Starts a real ``setpoint serve`` process (SQLite, or a throwaway PostgreSQL database with ``--postgres``)
allowed to call receivers on 127.0.0.1 (HTTP servers answering 200 at once: one in a thread of this process,
which times arrivals, and one in a child process, which counts them).

* **delivery latency**: one webhook subscribed to ``variable.updated``; one write at a time (a label moved with
  ``PUT /v1/variables/{name}/labels/{label}/``), each waited for at the receiver. Reported: from sending the
  write to its delivery arriving, and the write's own response time (so the part after the commit is about
  the difference).
* **write latency with 0 vs 5 webhooks**: two projects, one without webhooks and one with 5 (each subscribed to
  the write's events, so every write queues 10 deliveries: ``variable.updated`` and ``label.moved`` x 5); writes
  alternate between them, so both see the same load, including the deliveries being sent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from _report import add_record_option, cpu_model, load_average, record_section, serving

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from setpoint._server.services import keys  # noqa: E402
from setpoint._server.services.changes import ChangeSink  # noqa: E402
from setpoint._server.services.context import ServiceContext  # noqa: E402
from setpoint._server.storage import open_storage  # noqa: E402

POSTGRES_URL = os.environ.get("SETPOINT_TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/test")
SECTION_TITLE = "## Webhooks (benchmarks/webhooks.py)"


class _Arrivals:
    """Arrival times (``time.perf_counter``) per endpoint path, with a condition to wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.times: dict[str, list[float]] = {}

    def add(self, path: str) -> None:
        with self.cond:
            self.times.setdefault(path, []).append(time.perf_counter())
            self.cond.notify_all()

    def wait(self, path: str, count: int, timeout: float = 30.0) -> float:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.times.get(path, [])) >= count, timeout)
            if not ok:
                raise RuntimeError(f"delivery {count} to {path} did not arrive within {timeout}s")
            return self.times[path][count - 1]


@contextmanager
def receiver() -> Iterator[tuple[str, _Arrivals]]:
    """An HTTP receiver in a thread: records when each POST arrives, answers 200."""
    arrivals = _Arrivals()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            arrivals.add(self.path)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", arrivals
    finally:
        server.shutdown()


_COUNTING_RECEIVER = """
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
counts, lock = {}, threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def _send(self, status, body=b""):
        self.send_response(status); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with lock: counts[self.path] = counts.get(self.path, 0) + 1
        self._send(200)
    def do_GET(self):
        with lock: self._send(200, str(counts.get(self.path, 0)).encode())
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
server.daemon_threads = True
server.serve_forever()
"""


@contextmanager
def counting_receiver() -> Iterator[str]:
    """A receiver in a child process (so the deliveries it takes do not compete with this process's timing);
    ``GET <path>`` answers how many POSTs that path got."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-c", _COUNTING_RECEIVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/ready", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.kill()
        proc.wait(10)


def _wait_count(url: str, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while int(httpx.get(url, timeout=5).text) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: fewer than {count} deliveries arrived within {timeout}s")
        time.sleep(0.1)


@contextmanager
def setpoint_server(database_url: str, data_dir: Path) -> Iterator[str]:
    """A ``setpoint serve`` process allowed to call 127.0.0.1; yields its base URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": str(REPO), "SETPOINT_ADMIN_PASSWORD": "bench"}
    env["SETPOINT_WEBHOOKS_ALLOW_PRIVATE"] = "1"
    command = [sys.executable, "-c", "from setpoint._cli.main import main; main()", "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--log-level", "warning"]
    if database_url:
        command += ["--database-url", database_url]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with serving(proc, f"http://127.0.0.1:{port}") as url:
        yield url


@contextmanager
def database(postgres: bool, data_dir: Path) -> Iterator[str]:
    """``""`` (the server's SQLite file in ``data_dir``) or a throwaway PostgreSQL database."""
    if not postgres:
        yield ""
        return
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


def _key(database_url: str, data_dir: Path) -> str:
    storage = open_storage(database_url or f"sqlite:///{data_dir / 'setpoint.db'}")
    try:
        ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"))
        return keys.create_key(ctx, f"bench-{uuid.uuid4().hex[:6]}", frozenset({"read", "write"}), "bench").token
    finally:
        storage.dispose()


def _variable(client: httpx.Client) -> None:
    labels = {"a": {"target_type": "version", "serialized_value": "1"}, "b": {"target_type": "latest"}}
    client.post("/v1/variables/", json={"name": "bench", "labels": labels}).raise_for_status()
    client.post("/v1/variables/bench/versions/", json={"value": 2}).raise_for_status()


def _move(client: httpx.Client, i: int) -> float:
    """Move label ``b`` back and forth; the write's response time in seconds."""
    body = {"target_type": "version", "version": 1 + i % 2}
    start = time.perf_counter()
    client.put("/v1/variables/bench/labels/b/", json=body).raise_for_status()
    return time.perf_counter() - start


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def _row(what: str, samples: list[float]) -> str:
    return f"| {what} | {_pct(samples, 0.5):.1f} ms | {_pct(samples, 0.99):.1f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    add_record_option(parser)
    args = parser.parse_args()
    load_before = load_average()
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.postgres, Path(tmp)) as url,
        setpoint_server(url, Path(tmp)) as base,
        receiver() as (hook_url, arrivals),
        counting_receiver() as counting_url,
    ):
        auth = [{"Authorization": f"bearer {_key(url, Path(tmp))}"} for _ in range(3)]
        clients = [httpx.Client(base_url=base, headers=headers) for headers in auth]
        one, none, five = clients
        for client in clients:
            _variable(client)
        one.post("/v1/webhooks/", json={"url": f"{hook_url}/one", "events": ["variable.updated"]}).raise_for_status()
        for n in range(5):
            hook = {"url": f"{counting_url}/five{n}", "events": ["variable.updated", "label.moved"]}
            five.post("/v1/webhooks/", json=hook).raise_for_status()

        delivery: list[float] = []
        write_one: list[float] = []
        for i in range(args.writes):
            start = time.perf_counter()
            write_one.append(_move(one, i))
            delivery.append(arrivals.wait("/one", i + 1) - start)

        without: list[float] = []
        with_five: list[float] = []
        for i in range(args.writes):
            without.append(_move(none, i))
            with_five.append(_move(five, i))
        for n in range(5):
            _wait_count(f"{counting_url}/five{n}", 2 * args.writes)
        for client in clients:
            client.close()
    ratio = statistics.median(with_five) / statistics.median(without)
    database_name = "PostgreSQL" if args.postgres else "SQLite"
    body = f"""Machine: {cpu_model()}, load average {load_before:.1f} -> {load_average():.1f} (shared with other work).
{database_name}, one server process, receiver on the same machine; {args.writes} writes per series.

| what | p50 | p99 |
|---|---|---|
{_row("write sent -> its delivery at the receiver (1 webhook)", delivery)}
{_row("the same writes' response time", write_one)}
{_row("write, project without webhooks", without)}
{_row("write, project with 5 webhooks (10 deliveries queued per write)", with_five)}

Write latency with 5 webhooks / without, medians side by side: **{ratio:.2f}x**. A write queues its deliveries in
its own transaction (one indexed read of the project's enabled webhooks, one multi-row insert); the worker is
woken after the commit and sends on its own threads."""
    print(body)
    if args.record:
        record_section(Path(args.record), f"{SECTION_TITLE[:-1]}, {database_name})", body)


if __name__ == "__main__":
    main()
