"""A webhook receiver in its own process: verifies every delivery with the ``standardwebhooks`` library.

Run as ``python -m tests.server.webhook_receiver PORT``. Each path ``/h/<name>`` is one endpoint; the test
registers its secret and behaviour with ``POST /_config/<name>`` (``{"secret", "mode"}``; mode ``ok``,
``fail`` = HTTP 500, ``hang`` = answer after a minute, ``redirect`` = a 302 to ``/h/<name>-redirected``) and
reads what arrived with ``GET /_received/<name>`` (each: webhook-id, verified, the body as parsed JSON, the raw
body, the Host header).
:class:`Receiver` starts, stops and asks it from the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.server.support import REPO_ROOT, subprocess_env

_lock = threading.Lock()
_config: dict[str, dict[str, str]] = {}
_received: dict[str, list[dict[str, Any]]] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _answer(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        name = self.path.removeprefix("/_received/")
        with _lock:
            self._answer(200, list(_received.get(name, [])))

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if self.path.startswith("/_config/"):
            with _lock:
                _config[self.path.removeprefix("/_config/")] = json.loads(raw)
            self._answer(200, {})
            return
        name = self.path.removeprefix("/h/")
        with _lock:
            config = dict(_config.get(name, {}))
        from standardwebhooks.webhooks import Webhook

        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            Webhook(config["secret"]).verify(raw, headers)
            verified = True
        except Exception:
            verified = False
        mode = config.get("mode", "ok")
        entry = {
            "id": headers.get("webhook-id"),
            "verified": verified,
            "body": json.loads(raw),
            "raw": raw.decode(),
            "host": headers.get("host"),
            "mode": mode,
        }
        with _lock:
            _received.setdefault(name, []).append(entry)
        if mode == "hang":
            time.sleep(60)
            return
        if mode == "redirect":
            self.send_response(302)
            self.send_header("location", f"/h/{name}-redirected")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self._answer(500 if mode == "fail" else 200, {"ok": mode != "fail"})


def main() -> None:
    """Serve on 127.0.0.1:PORT until killed (an optional second argument: endpoint configurations as JSON)."""
    port = int(sys.argv[1])
    if len(sys.argv) > 2:
        _config.update(json.loads(sys.argv[2]))
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


@dataclass
class Receiver:
    """The receiver process, seen from a test."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, configs: dict[str, dict[str, str]] | None = None) -> None:
        """Start it (with endpoint configurations ``{name: {"secret", "mode"}}``) and wait until it answers."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.server.webhook_receiver", str(self.port), json.dumps(configs or {})],
            env=subprocess_env(),
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/_received/x", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the webhook receiver did not start")

    def stop(self) -> None:
        """Kill it (what it received is gone)."""
        proc, self.process = self.process, None
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def configure(self, name: str, secret: str, mode: str = "ok") -> None:
        """Set an endpoint's secret and behaviour."""
        httpx.post(f"{self.url}/_config/{name}", json={"secret": secret, "mode": mode}, timeout=5).raise_for_status()

    def received(self, name: str) -> list[dict[str, Any]]:
        """What an endpoint received so far."""
        response = httpx.get(f"{self.url}/_received/{name}", timeout=5)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def wait_for(self, name: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until an endpoint received at least ``count`` deliveries (fails the test otherwise)."""
        deadline = time.monotonic() + timeout
        found = self.received(name)
        while len(found) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            found = self.received(name)
        assert len(found) >= count, f"{name}: {len(found)} deliveries arrived, expected {count}: {found}"
        return found


if __name__ == "__main__":
    main()
