"""A real ``setpoint serve`` subprocess for the remote tests, keys made with ``setpoint keys create``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from setpoint._cli.main import main; main()"]


def free_port() -> int:
    """A TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a child process importing this checkout (no SETPOINT_URL/API_KEY leaking in)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SETPOINT_URL", "SETPOINT_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class ServerProc:
    """``setpoint serve`` on a free port with its own data directory; can be killed and restarted."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    keepalive: float = 30.0
    """Long, as in production: nothing may depend on a keep-alive arriving (e.g. a prompt shutdown)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait for ``/readyz``."""
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir), "--log-level", "warning"],
            env=child_env(SETPOINT_SSE_KEEPALIVE_SECONDS=str(self.keepalive), SETPOINT_ADMIN_PASSWORD="admin-pw-1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        """What the server printed."""
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no graceful goodbye to the SSE clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """SIGINT, then kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def create_key(self, project: str, scopes: str = "read,write") -> str:
        """A key made with ``setpoint keys create`` (which prints only the key)."""
        done = subprocess.run(
            [*CLI, "keys", "create", "--project", project, "--scopes", scopes, "--data-dir", str(self.data_dir)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    def project(self) -> Project:
        """A fresh project with a read,write and a read-only key."""
        name = f"p-{uuid.uuid4().hex[:8]}"
        return Project(self, name, self.create_key(name))


@dataclass
class Project:
    """A project on a server, with its keys; `api` makes changes like a user of the API would."""

    server: ServerProc
    name: str
    key: str
    _read_key: str | None = None

    @property
    def read_key(self) -> str:
        """A read-only key (made on first use)."""
        if self._read_key is None:
            self._read_key = self.server.create_key(self.name, "read")
        return self._read_key

    def api(self) -> httpx.Client:
        """A client with the read,write key."""
        return httpx.Client(base_url=self.server.url, headers={"Authorization": f"bearer {self.key}"}, timeout=10)

    def put_variable(
        self, name: str, value: Any, *, schema: dict[str, Any] | None = None, create: bool = False
    ) -> None:
        """Create or replace ``name`` with one label ``main`` serving ``value`` to everyone."""
        body = {
            "name": name,
            "json_schema": schema,
            "labels": {"main": {"target_type": "version", "serialized_value": json.dumps(value)}},
            "rollout": {"labels": {"main": 1.0}},
        }
        with self.api() as api:
            response = api.post("/v1/variables/", json=body) if create else api.put(f"/v1/variables/{name}/", json=body)
            response.raise_for_status()
