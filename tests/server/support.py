"""Helpers of the server tests: a server subprocess, projects with keys, HTTP clients."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from setpoint._server.services import keys
from setpoint._server.services.context import ServiceContext

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child process importing this checkout (no SETPOINT_URL/API_KEY leaking in)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SETPOINT_URL", "SETPOINT_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass
class Project:
    """A project with a read,write key and a read-only key."""

    name: str
    id: int
    rw_key: str
    ro_key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        """Authorization headers (the read,write key unless another is given)."""
        return {"Authorization": f"bearer {key or self.rw_key}"}


def make_project(ctx: ServiceContext, name: str | None = None) -> Project:
    """A new project with two keys."""
    name = name or f"p-{uuid.uuid4().hex[:10]}"
    rw = keys.create_key(ctx, name, frozenset({"read", "write"}), "tests")
    ro = keys.create_key(ctx, name, frozenset({"read"}), "tests")
    return Project(name=name, id=rw.project.id, rw_key=rw.token, ro_key=ro.token)


CLI = [sys.executable, "-c", "from setpoint._cli.main import main; main()"]
"""The ``setpoint`` command of this checkout (works without ``pip install -e .``)."""
_QUIET = ("--log-level", "warning")


@dataclass
class ServerProcess:
    """``setpoint serve`` in a child process; it can be stopped, killed and started again on the same port."""

    database_url: str
    """``""``: the SQLite file in ``data_dir``."""
    data_dir: Path
    port: int = field(default_factory=free_port)
    keepalive: float = 15.0
    admin_password: str = "test-admin-password"
    process: subprocess.Popen[bytes] | None = None
    output: str = ""
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    """More ``setpoint serve`` options (e.g. ``--ssl-certfile``, ``--workers 2``)."""
    scheme: str = "http"
    verify: ssl.SSLContext | bool = True
    """How the readiness check verifies TLS (a CA file for a test certificate)."""
    env: dict[str, str] = field(default_factory=dict)
    """More environment variables of the server (e.g. ``SETPOINT_WEBHOOKS_ALLOW_PRIVATE``)."""

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until ``/readyz`` answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{uuid.uuid4().hex[:8]}.log"
        database = ["--database-url", self.database_url] if self.database_url else []
        env = subprocess_env(
            SETPOINT_ADMIN_PASSWORD=self.admin_password,
            SETPOINT_SSE_KEEPALIVE_SECONDS=str(self.keepalive),
            **self.env,
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *CLI,
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    *database,
                    *_QUIET,
                    *self.extra_args,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1, verify=self.verify).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become ready within {timeout}s:\n{self.output}")

    def log(self) -> str:
        """What the current (or last) process printed so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        """Stop (SIGINT, then kill) and return everything it printed."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.output = self.log()
        return self.output

    def kill(self) -> None:
        """SIGKILL: no graceful goodbye to the SSE clients."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def keys_command(self, *args: str) -> str:
        """Run ``setpoint keys ARGS`` on this server's database; its stdout."""
        database = ["--database-url", self.database_url] if self.database_url else []
        done = subprocess.run(
            [*CLI, "keys", *args, "--data-dir", str(self.data_dir), *database],
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def create_key(self, project: str, scopes: str = "read,write") -> str:
        """A key made with ``setpoint keys create`` (which prints only the key)."""
        return self.keys_command("create", "--project", project, "--scopes", scopes).strip()

    def client(self, project: Project, key: str | None = None) -> httpx.Client:
        """An HTTP client for this server authenticated as the project's key."""
        return httpx.Client(base_url=self.url, headers=project.headers(key), timeout=10)


KEY_PATTERN = re.compile(r"sp_[A-Za-z0-9_-]{20,}")
