"""Small helpers of the management API tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

SCHEMA = {
    "type": "object",
    "properties": {"instructions": {"type": "string"}, "temperature": {"type": "number"}},
    "required": ["instructions"],
}


def create_variable(api: httpx.Client, name: str = "agent_config", schema: Any = SCHEMA) -> dict[str, Any]:
    """Create a variable (no versions) and return its JSON."""
    response = api.post("/v1/variables/", json={"name": name, "json_schema": schema, "description": "An agent"})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def add_version(api: httpx.Client, value: Any, name: str = "agent_config", **extra: Any) -> httpx.Response:
    """POST a new version (asserting nothing)."""
    return api.post(f"/v1/variables/{name}/versions/", json={"serialized_value": json.dumps(value), **extra})


def revision(response: httpx.Response) -> int:
    """The revision in a response's ETag."""
    return int(response.headers["etag"].strip('"'))


def etag(api: httpx.Client, name: str = "agent_config") -> str:
    """The variable's current ETag (to send as If-Match)."""
    return api.get(f"/v1/variables/{name}/").headers["etag"]
