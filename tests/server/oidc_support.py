"""The test OpenID Connect provider (``tests/server/oidc_provider.py``) as a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.server.support import free_port, subprocess_env

CLIENT_ID = "setpoint-test"
CLIENT_SECRET = "test-secret"
IDP_PASSWORD = "idp password"


@dataclass(frozen=True)
class Provider:
    """A running provider: its issuer URL."""

    issuer: str


@contextmanager
def oidc_provider(users: dict[str, dict[str, Any]]) -> Iterator[Provider]:
    """Run the provider with ``users`` (login -> email, email_verified, name, groups) until the block ends."""
    port = free_port()
    data = {login: {"password": IDP_PASSWORD, **user} for login, user in users.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.server.oidc_provider", str(port), json.dumps(data)],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the OIDC test provider did not start")
            time.sleep(0.05)
        yield Provider(issuer=issuer)
    finally:
        process.terminate()
        process.wait(10)
