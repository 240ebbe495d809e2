"""An MCP server (Model Context Protocol, official ``mcp`` SDK) that lets agents and IDE assistants read and
change a project's managed variables.

It talks to a Setpoint server over HTTP with one API key, never to the database, so the key's scopes are the
limit of what the tools can do: the server refuses a write made with a read key, and the tool answers with
that refusal (an MCP tool error naming the scope needed) instead of failing silently.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from setpoint._remote.client import USER_AGENT, _server_message

__all__ = ["SetpointApi", "build_server"]

INSTRUCTIONS = """\
Setpoint holds managed variables: typed, versioned runtime configuration (LLM prompts, model settings, feature
flags). A variable has immutable numbered versions; labels (e.g. production, staging) point at versions; a
rollout picks a label per targeting key (percentages) and override rules pick one by attributes.
Read with list_variables / get_variable / read_history, check what a user would get with resolve, change with
create_version (a new value, optionally moving a label onto it) and move_label. Writes need an API key with the
write scope; pass `revision` (from get_variable) to refuse a change when someone else changed the variable."""

_READ = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
_WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)
_MOVE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)


class SetpointApi:
    """The HTTP calls the tools make; any non-2xx answer becomes a :class:`ToolError` with the server's message."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"bearer {api_key}", "User-Agent": f"{USER_AGENT} (mcp)"}
        self._client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def call(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; a refusal or failure raises a ToolError saying what to do."""
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ToolError(f"{what}: cannot reach the Setpoint server at {self.url} ({exc}); is it running?") from None
        status = response.status_code
        if status < 400:
            return response
        message = _server_message(response)
        if status == 401:
            raise ToolError(f"{what}: the server refused the API key (401: {message}); check SETPOINT_API_KEY")
        if status == 403:
            raise ToolError(f"{what}: not allowed with this API key (403: {message})")
        raise ToolError(f"{what}: the server answered {status}: {message}")


def _path(name: str) -> str:
    return f"/v1/variables/{quote(name, safe='')}/"


def _summary(variable: dict[str, Any]) -> dict[str, Any]:
    latest = variable.get("latest_version") or {}
    labels: dict[str, Any] = {}
    for label, target in (variable.get("labels") or {}).items():
        labels[label] = target["ref"] if "ref" in target else f"version {target.get('version')}"
    return {
        "name": variable["name"],
        "description": variable.get("description"),
        "latest_version": latest.get("version"),
        "labels": labels,
        "rollout": (variable.get("rollout") or {}).get("labels", {}),
        "override_rules": len(variable.get("overrides") or []),
        "type_name": variable.get("type_name"),
        "external": bool(variable.get("external", False)),
    }


def _revision_header(revision: int | None) -> dict[str, str]:
    return {} if revision is None else {"If-Match": f'"{revision}"'}


def build_server(api: SetpointApi) -> MCPServer:
    """The MCP server with Setpoint's tools, calling ``api``."""
    server: MCPServer = MCPServer(name="setpoint", title="Setpoint managed variables", instructions=INSTRUCTIONS)

    @server.tool(annotations=_READ)
    async def list_variables(
        search: Annotated[str | None, Field(description="Only names or descriptions containing this text")] = None,
    ) -> dict[str, Any]:
        """List the project's variables: latest version, labels and where they point, default rollout."""
        config = (await api.call("list_variables", "GET", "/v1/variables/")).json()
        rows = [_summary(v) for _, v in sorted(config.get("variables", {}).items())]
        if search:
            needle = search.lower()
            rows = [r for r in rows if needle in r["name"].lower() or needle in (r["description"] or "").lower()]
        return {"variables": rows, "count": len(rows)}

    @server.tool(annotations=_READ)
    async def get_variable(name: Annotated[str, Field(description="The variable's name")]) -> dict[str, Any]:
        """One variable in full: its versions (values, authors, descriptions), labels, default rollout and
        targeting (override rules), JSON schema, and its current revision (pass it to writes)."""
        response = await api.call("get_variable", "GET", _path(name))
        versions = (await api.call("get_variable", "GET", _path(name) + "versions/")).json()
        variable = response.json()
        return {
            "name": variable["name"],
            "revision": int(response.headers.get("etag", "0").strip('"') or 0),
            "description": variable.get("description"),
            "external": bool(variable.get("external", False)),
            "json_schema": variable.get("json_schema"),
            "type_name": variable.get("type_name"),
            "labels": variable.get("labels", {}),
            "rollout": variable.get("rollout"),
            "overrides": variable.get("overrides", []),
            "versions": versions,
        }

    @server.tool(annotations=_READ)
    async def resolve(
        targeting_key: Annotated[str | None, Field(description="Who is asking (user id, org id, ...)")] = None,
        attributes: Annotated[
            dict[str, Any] | None, Field(description='Attributes the rules read, e.g. {"plan": "enterprise"}')
        ] = None,
        variables: Annotated[list[str] | None, Field(description="Only these variables (default: all)")] = None,
        label: Annotated[str | None, Field(description="Ask for this label explicitly")] = None,
    ) -> dict[str, Any]:
        """What each variable serves for this targeting key and these attributes (label, version, value) and
        why: the same evaluation as the SDK, with a one-sentence explanation per variable."""
        body = {"targeting_key": targeting_key, "attributes": attributes or {}, "variables": variables, "label": label}
        result: dict[str, Any] = (await api.call("resolve", "POST", "/v1/resolve/", json=body)).json()
        return result

    @server.tool(annotations=_WRITE)
    async def create_version(
        name: Annotated[str, Field(description="The variable's name")],
        value: Annotated[Any, Field(description="The new value (any JSON; validated against the variable's schema)")],
        description: Annotated[str | None, Field(description="What changed and why")] = None,
        label: Annotated[str | None, Field(description="A label to point at the new version, if any")] = None,
        revision: Annotated[int | None, Field(description="Refuse if the variable changed since this revision")] = None,
    ) -> dict[str, Any]:
        """Store a new immutable version of a variable (needs the write scope); optionally move a label onto
        it. A value that does not match the schema is refused with the reason."""
        body = {"value": value, "description": description, "label": label}
        response = await api.call(
            "create_version", "POST", _path(name) + "versions/", json=body, headers=_revision_header(revision)
        )
        created: dict[str, Any] = response.json()
        created["revision"] = int(response.headers.get("etag", "0").strip('"') or 0)
        created["label_moved"] = label
        return created

    @server.tool(annotations=_MOVE)
    async def move_label(
        name: Annotated[str, Field(description="The variable's name")],
        label: Annotated[str, Field(description="The label to move (created if new), e.g. production")],
        version: Annotated[int | None, Field(description="The version to point at (target 'version')")] = None,
        target: Annotated[
            Literal["version", "latest", "code_default", "label"],
            Field(description="Point at a version, always the latest, the code default, or another label"),
        ] = "version",
        target_label: Annotated[str | None, Field(description="The other label (target 'label')")] = None,
        revision: Annotated[int | None, Field(description="Refuse if the variable changed since this revision")] = None,
    ) -> dict[str, Any]:
        """Point a label at another version (or latest, the code default, another label); needs the write
        scope. The move is recorded in the label's history and can be undone by moving it back."""
        if target == "version" and version is None:
            raise ToolError("move_label: give `version` (the version number to point the label at)")
        if target == "label" and not target_label:
            raise ToolError("move_label: give `target_label` (the label to point at)")
        body: dict[str, Any] = {"target_type": target}
        if target == "version":
            body["version"] = version
        if target == "label":
            body["target_label"] = target_label
        path = _path(name) + f"labels/{quote(label, safe='')}/"
        response = await api.call("move_label", "PUT", path, json=body, headers=_revision_header(revision))
        variable = response.json()
        return {
            "name": variable["name"],
            "label": label,
            "now": variable["labels"].get(label),
            "revision": int(response.headers.get("etag", "0").strip('"') or 0),
        }

    @server.tool(annotations=_READ)
    async def read_history(
        name: Annotated[str | None, Field(description="One variable's history (default: the whole project's)")] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="At most this many entries, newest first")] = 50,
    ) -> dict[str, Any]:
        """Who changed what and when (newest first); for one variable also its label moves."""
        if name is None:
            entries = (await api.call("read_history", "GET", "/v1/audit/", params={"limit": limit})).json()
            return {"changes": [_entry(e) for e in entries]}
        history = (await api.call("read_history", "GET", _path(name) + "history/")).json()
        return {
            "changes": [_entry(e) for e in history["changes"][:limit]],
            "label_moves": history["label_moves"][:limit],
        }

    return server


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An audit entry without the full before/after documents (which can be large), but with a summary."""
    out = {k: v for k, v in entry.items() if k not in ("before", "after")}
    out.setdefault("summary", f"{entry.get('action')} {entry.get('entity_type')} {entry.get('entity_name')}")
    return out


def run_stdio(url: str, api_key: str) -> None:
    """Serve the tools over stdin/stdout until the client disconnects."""
    api = SetpointApi(url, api_key)
    build_server(api).run("stdio")
