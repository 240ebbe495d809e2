"""A real ``setpoint serve`` subprocess for the remote tests, keys made with ``setpoint keys create``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.server.support import ServerProcess


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class ServerProc(ServerProcess):
    """``setpoint serve`` on a free port with its own SQLite data directory; can be killed and restarted.

    The keep-alive is long by default, as in production: nothing may depend on one arriving.
    """

    def __init__(self, data_dir: Path, keepalive: float = 30.0) -> None:
        super().__init__(database_url="", data_dir=data_dir, keepalive=keepalive)

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
