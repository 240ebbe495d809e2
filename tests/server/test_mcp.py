"""``setpoint mcp``: an MCP session driven by the official ``mcp`` client library over stdio (the command runs as
a subprocess, as an IDE would start it) against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult, TextContent

from tests.server.conftest import BACKENDS
from tests.server.support import CLI, Project, ServerProcess, subprocess_env

on_both_backends = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

T = TypeVar("T")
PROMPT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def _params(server: ServerProcess, key: str) -> StdioServerParameters:
    env = subprocess_env(SETPOINT_URL=server.url, SETPOINT_API_KEY=key)
    return StdioServerParameters(command=sys.executable, args=[*CLI[1:], "mcp"], env=env)


def session(server: ServerProcess, key: str, scenario: Callable[[Client], Awaitable[T]]) -> T:
    """Start ``setpoint mcp`` over stdio with ``key`` and run ``scenario`` with a connected client."""

    async def main() -> T:
        async with Client(_params(server, key), read_timeout_seconds=30) as client:
            return await scenario(client)

    return asyncio.run(main())


def data(result: CallToolResult) -> Any:
    """A successful tool call's structured result."""
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    first = result.content[0]
    assert isinstance(first, TextContent)
    return json.loads(first.text)


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


@pytest.fixture
def seeded(server: ServerProcess, project: Project) -> Project:
    labels = {"production": {"target_type": "version", "serialized_value": json.dumps({"text": "Be concise."})}}
    overrides = [
        {
            "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "enterprise"}],
            "rollout": {"labels": {"production": 1.0}},
        }
    ]
    with server.client(project) as client:
        client.post(
            "/v1/variables/",
            json={
                "name": "support_prompt",
                "description": "The support agent's instructions",
                "json_schema": PROMPT,
                "labels": labels,
                "rollout": {"labels": {}},
                "overrides": overrides,
            },
        ).raise_for_status()
        client.post(
            "/v1/variables/", json={"name": "max_tokens", "rollout": {"labels": {}}, "overrides": []}
        ).raise_for_status()
    return project


@on_both_backends
def test_an_agent_reads_resolves_writes_and_moves_a_label(server: ServerProcess, seeded: Project) -> None:
    async def scenario(client: Client) -> dict[str, Any]:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {
            "list_variables",
            "get_variable",
            "resolve",
            "create_version",
            "move_label",
            "read_history",
        }
        assert tools["list_variables"].annotations is not None and tools["list_variables"].annotations.read_only_hint
        out: dict[str, Any] = {}
        out["list"] = data(await client.call_tool("list_variables", {}))
        out["search"] = data(await client.call_tool("list_variables", {"search": "SUPPORT agent"}))
        out["get"] = data(await client.call_tool("get_variable", {"name": "support_prompt"}))
        out["before"] = data(
            await client.call_tool("resolve", {"targeting_key": "u1", "attributes": {"plan": "enterprise"}})
        )
        out["free"] = data(
            await client.call_tool("resolve", {"targeting_key": "u1", "attributes": {"plan": "free"},
                                               "variables": ["support_prompt"]})
        )  # fmt: skip
        out["created"] = data(
            await client.call_tool(
                "create_version",
                {"name": "support_prompt", "value": {"text": "Be thorough."}, "description": "longer answers"},
            )
        )
        out["invalid"] = await client.call_tool("create_version", {"name": "support_prompt", "value": {"txt": 1}})
        out["stale"] = await client.call_tool(
            "move_label", {"name": "support_prompt", "label": "production", "version": 2, "revision": 1}
        )
        out["moved"] = data(
            await client.call_tool(
                "move_label",
                {"name": "support_prompt", "label": "production", "version": 2, "revision": out["created"]["revision"]},
            )
        )
        out["after"] = data(
            await client.call_tool(
                "resolve",
                {"targeting_key": "u1", "attributes": {"plan": "enterprise"}, "variables": ["support_prompt"]},
            )
        )
        out["history"] = data(await client.call_tool("read_history", {"name": "support_prompt"}))
        out["project_history"] = data(await client.call_tool("read_history", {"limit": 2}))
        out["missing"] = await client.call_tool("get_variable", {"name": "no_such_variable"})
        return out

    out = session(server, seeded.rw_key, scenario)
    assert [v["name"] for v in out["list"]["variables"]] == ["max_tokens", "support_prompt"]
    prompt = next(v for v in out["list"]["variables"] if v["name"] == "support_prompt")
    assert prompt["labels"] == {"production": "version 1"} and prompt["override_rules"] == 1
    assert [v["name"] for v in out["search"]["variables"]] == ["support_prompt"]
    got = out["get"]
    assert got["json_schema"] == PROMPT and got["overrides"][0]["conditions"][0]["attribute"] == "plan"
    assert [v["version"] for v in got["versions"]] == [1] and got["revision"] >= 1
    before = {r["name"]: r for r in out["before"]["results"]}
    assert before["support_prompt"]["label"] == "production" and before["support_prompt"]["version"] == 1
    assert "override" in before["support_prompt"]["explanation"].lower()
    assert out["free"]["results"][0]["label"] is None  # no rule matched: the code default
    assert out["created"]["version"] == 2
    assert "422" in error_text(out["invalid"]) and "support_prompt" in error_text(out["invalid"])
    assert "412" in error_text(out["stale"])
    assert out["moved"]["now"] == {"version": 2, "serialized_value": '{"text": "Be thorough."}'}
    after = out["after"]["results"][0]
    assert (after["label"], after["version"], json.loads(after["serialized_value"])) == (
        "production",
        2,
        {"text": "Be thorough."},
    )
    actions = [c["action"] for c in out["history"]["changes"]]
    assert actions[:3] == ["move_label", "create_version", "create"]
    assert out["history"]["label_moves"] and len(out["project_history"]["changes"]) == 2
    assert "404" in error_text(out["missing"]) and "no_such_variable" in error_text(out["missing"])


@on_both_backends
def test_a_read_key_cannot_write_and_is_told_why(server: ServerProcess, seeded: Project) -> None:
    async def scenario(client: Client) -> tuple[Any, CallToolResult, CallToolResult]:
        listed = data(await client.call_tool("list_variables", {}))
        write = await client.call_tool("create_version", {"name": "support_prompt", "value": {"text": "x"}})
        move = await client.call_tool(
            "move_label", {"name": "support_prompt", "label": "production", "target": "latest"}
        )
        return listed, write, move

    listed, write, move = session(server, seeded.ro_key, scenario)
    assert listed["count"] == 2
    for refused in (write, move):
        text = error_text(refused)
        assert "403" in text and "'write'" in text, text
    with server.client(seeded) as client:  # nothing was written
        versions = client.get("/v1/variables/support_prompt/versions/").json()
    assert [v["version"] for v in versions] == [1]


@on_both_backends
def test_a_read_external_key_can_use_no_tool(server: ServerProcess, seeded: Project) -> None:
    key = server.create_key(seeded.name, "read_external")

    async def scenario(client: Client) -> CallToolResult:
        return await client.call_tool("list_variables", {})

    text = error_text(session(server, key, scenario))
    assert "403" in text and "'read'" in text


def test_the_command_needs_a_url_and_a_key() -> None:
    done = subprocess.run(
        [*CLI, "mcp"], env=subprocess_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 2 and "SETPOINT_URL" in done.stderr and "SETPOINT_API_KEY" in done.stderr
