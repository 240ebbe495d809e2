"""Helpers of the server tests: a server subprocess, projects with keys, HTTP clients."""

from __future__ import annotations

import os
import re
import socket
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
    """The environment for a child Python process that imports this checkout."""
    env = dict(os.environ)
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


@dataclass
class ServerProcess:
    """``setpoint serve`` in a child process."""

    database_url: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    keepalive: float = 15.0
    admin_password: str = "test-admin-password"
    process: subprocess.Popen[str] | None = None
    output: str = ""

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until ``/readyz`` answers 200."""
        code = (
            "import sys; from pathlib import Path; from setpoint._cli.serve import serve; "
            "serve(host='127.0.0.1', port=int(sys.argv[1]), data_dir=Path(sys.argv[2]), "
            "database_url=sys.argv[3], log_level='warning')"
        )
        env = subprocess_env(
            SETPOINT_ADMIN_PASSWORD=self.admin_password, SETPOINT_SSE_KEEPALIVE_SECONDS=str(self.keepalive)
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(self.port), str(self.data_dir), self.database_url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.process.stdout.read() if self.process.stdout else ""
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{out}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become ready within {timeout}s:\n{self.output}")

    def stop(self) -> str:
        """Stop (SIGINT, then kill) and return everything it printed."""
        if self.process is None:
            return self.output
        proc, self.process = self.process, None
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.output = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
        return self.output

    def client(self, project: Project, key: str | None = None) -> httpx.Client:
        """An HTTP client for this server authenticated as the project's key."""
        return httpx.Client(base_url=self.url, headers=project.headers(key), timeout=10)


KEY_PATTERN = re.compile(r"sp_[A-Za-z0-9_-]{20,}")
