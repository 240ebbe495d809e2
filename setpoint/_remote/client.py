"""HTTP client of the Setpoint (Logfire-compatible) ``/v1`` API.

Everything that decides something — which request to send, what a response means, which error to raise —
is I/O-free (`fetch_headers`, `read_fetch`, `check`, `variable_body`); `RemoteClient` (sync) and
`fetch_config_async` only send requests and hand the responses to those functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
import pydantic_core

from setpoint._remote import hints
from setpoint._remote.options import RemoteOptions
from setpoint._sdk.providers.base import gc_paused
from setpoint.config import LabeledValue, LabelRef, Segment, VariableConfig, VariablesConfig, VariableTypeConfig
from setpoint.exceptions import (
    AuthenticationError,
    ConflictError,
    RemoteError,
    ServerResponseError,
    ServerUnreachableError,
)

__all__ = [
    "SEGMENTS_PATH",
    "VARIABLES_PATH",
    "VARIABLE_TYPES_PATH",
    "VARIABLE_UPDATES_PATH",
    "Fetched",
    "RemoteClient",
    "check",
    "fetch_config_async",
    "fetch_headers",
    "is_transient",
    "read_fetch",
    "request_headers",
    "unreachable",
    "variable_body",
]

VARIABLES_PATH = "/v1/variables/"
VARIABLE_TYPES_PATH = "/v1/variable-types/"
VARIABLE_UPDATES_PATH = "/v1/variable-updates/"
SEGMENTS_PATH = "/v1/segments/"


def _user_agent() -> str:
    try:
        return f"setpoint-python/{version('setpoint')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "setpoint-python/0"


USER_AGENT = _user_agent()


@dataclass(frozen=True)
class Fetched:
    """The answer to ``GET /v1/variables/``: ``data`` is the parsed JSON, None when not modified (304)."""

    data: Any
    etag: str | None
    not_modified: bool = False


def request_headers(api_key: str) -> dict[str, str]:
    """Headers of every request: the bearer key and our User-Agent (not ``logfire/``: we get every condition)."""
    return {"Authorization": f"bearer {api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}


def fetch_headers(etag: str | None) -> dict[str, str]:
    """Extra headers of a config fetch: a conditional GET when we hold an ETag."""
    return {"If-None-Match": etag} if etag else {}


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200] if text else response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if value is not None:
                return json.dumps(value)[:300]
    return json.dumps(body)[:300]


def check(response: httpx.Response, what: str) -> httpx.Response:
    """``response`` if it is a success; otherwise the `RemoteError` saying what went wrong and what to do."""
    status = response.status_code
    if status == 202 and "/v1/change-requests/" in response.headers.get("location", ""):
        # The project reviews this change: nothing was applied; a change request waits for approval.
        message = _server_message(response)
        raise ConflictError(f"{what}: {message} ({response.headers['location']})", status_code=status)
    if 200 <= status < 300:
        return response
    message = _server_message(response)
    if status in (401, 403):
        raise AuthenticationError(
            f"{what}: the server refused the API key ({status}: {message}); check the key ({hints.current().api_key}); "
            "writes need a key with the write scope",
            status_code=status,
        )
    if status in (409, 412):
        raise ConflictError(f"{what}: {message} ({status})", status_code=status)
    raise ServerResponseError(f"{what}: the server answered {status}: {message}", status_code=status)


def read_fetch(response: httpx.Response) -> Fetched:
    """Interpret the response of a config fetch (304 -> not modified; 2xx -> parsed JSON, else raise)."""
    if response.status_code == 304:
        return Fetched(data=None, etag=response.headers.get("ETag"), not_modified=True)
    check(response, "fetching the variables")
    try:
        with gc_paused():
            # pydantic's JSON parser (jiter): faster than `json`, and short strings (keys, label names) are
            # shared rather than one copy per occurrence
            data = pydantic_core.from_json(response.content)
    except ValueError as exc:
        raise ServerResponseError(f"fetching the variables: the body is not JSON: {exc}") from None
    return Fetched(data=data, etag=response.headers.get("ETag"))


def unreachable(url: str, exc: Exception) -> ServerUnreachableError:
    """The error for a request that never got an answer."""
    reason = str(exc) or type(exc).__name__
    return ServerUnreachableError(
        f"cannot reach the Setpoint server at {url} ({reason}); check that it is up and the URL is right "
        f"({hints.current().url})"
    )


def _label_body(label: LabeledValue | LabelRef) -> dict[str, Any]:
    if isinstance(label, LabeledValue):
        return {"target_type": "version", "version": label.version, "serialized_value": label.serialized_value}
    if label.ref == "latest":
        return {"target_type": "latest"}
    if label.ref == "code_default":
        return {"target_type": "code_default"}
    return {"target_type": "label", "target_label": label.ref}


def variable_body(config: VariableConfig) -> dict[str, Any]:
    """The body of ``POST /v1/variables/`` and ``PUT /v1/variables/{name}/`` for a variable config (as the Logfire
    SDK sends it, plus ``external`` when set)."""
    body: dict[str, Any] = {
        "name": config.name,
        "description": config.description,
        "rollout": config.rollout.model_dump(mode="json"),
        "overrides": [override.model_dump(mode="json") for override in config.overrides],
    }
    if config.json_schema is not None:
        body["json_schema"] = config.json_schema
    if config.type_name is not None:
        body["type_name"] = config.type_name
    if config.aliases is not None:
        body["aliases"] = list(config.aliases)
    if config.example is not None:
        body["example"] = config.example
    if config.template_inputs_schema is not None:
        body["template_inputs_schema"] = config.template_inputs_schema
    if config.labels:
        body["labels"] = {name: _label_body(label) for name, label in config.labels.items()}
    if config.external:
        body["external"] = True
    return body


class RemoteClient:
    """Synchronous client of one Setpoint server and project (the project is the API key's)."""

    def __init__(self, options: RemoteOptions) -> None:
        self.url = options.resolved_url()
        self._http = httpx.Client(
            base_url=self.url,
            headers=request_headers(options.resolved_api_key()),
            timeout=options.request_timeout.total_seconds(),
        )

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None

    def fetch_config(self, etag: str | None = None, *, delta: bool = False) -> Fetched:
        """``GET /v1/variables/`` (conditional on ``etag``); with ``delta``, only what changed since ``etag``."""
        params = {"since": etag} if delta and etag else None
        return read_fetch(self._send("GET", VARIABLES_PATH, headers=fetch_headers(etag), params=params))

    def get_config(self) -> VariablesConfig:
        """The whole config of the project, validated."""
        fetched = self.fetch_config()
        try:
            return VariablesConfig.model_validate(fetched.data, context={"allow_unknown_conditions": True})
        except ValueError as exc:
            raise ServerResponseError(f"the server sent a config that does not validate: {exc}") from None

    def list_types(self) -> dict[str, VariableTypeConfig]:
        """The project's variable types, by name."""
        response = check(self._send("GET", VARIABLE_TYPES_PATH), "listing the variable types")
        try:
            items = response.json()
            if isinstance(items, dict):  # tolerate {"types": [...]} / {"items": [...]}
                items = items.get("types", items.get("items", []))
            types = [VariableTypeConfig.model_validate(item) for item in items]
        except (ValueError, TypeError) as exc:
            raise ServerResponseError(f"listing the variable types: unexpected body: {exc}") from None
        return {t.name: t for t in types}

    def upsert_type(self, config: VariableTypeConfig) -> None:
        """Create or replace a variable type (``POST /v1/variable-types/`` is an upsert by name)."""
        body: dict[str, Any] = {
            "name": config.name,
            "json_schema": config.json_schema,
            "description": config.description,
        }
        if config.source_hint is not None:
            body["source_hint"] = config.source_hint
        check(self._send("POST", VARIABLE_TYPES_PATH, json=body), f"pushing type {config.name!r}")

    def create_variable(self, config: VariableConfig) -> None:
        """Create a variable (with its labels; inline label values become versions)."""
        check(self._send("POST", VARIABLES_PATH, json=variable_body(config)), f"creating {config.name!r}")

    def replace_variable(self, config: VariableConfig) -> None:
        """Replace a variable's fields and labels (``external`` included: the config is the whole truth)."""
        path = f"{VARIABLES_PATH}{config.name}/"
        body = {**variable_body(config), "external": config.external}
        check(self._send("PUT", path, json=body), f"updating {config.name!r}")

    def delete_variable(self, name: str) -> None:
        """Delete a variable."""
        check(self._send("DELETE", f"{VARIABLES_PATH}{name}/"), f"deleting {name!r}")

    def create_segment(self, segment: Segment) -> None:
        """Create a segment (``POST /v1/segments/``)."""
        body = segment.model_dump(mode="json")
        check(self._send("POST", SEGMENTS_PATH, json=body), f"creating segment {segment.key!r}")

    def replace_segment(self, segment: Segment) -> None:
        """Replace a segment (``PUT /v1/segments/{key}/``)."""
        body = segment.model_dump(mode="json")
        path = f"{SEGMENTS_PATH}{segment.key}/"
        check(self._send("PUT", path, json=body), f"updating segment {segment.key!r}")

    def delete_segment(self, key: str) -> None:
        """Delete a segment."""
        check(self._send("DELETE", f"{SEGMENTS_PATH}{key}/"), f"deleting segment {key!r}")


async def fetch_config_async(options: RemoteOptions, etag: str | None = None, *, delta: bool = False) -> Fetched:
    """The async twin of `RemoteClient.fetch_config` (a short-lived client: it belongs to the running loop)."""
    url = options.resolved_url()
    async with httpx.AsyncClient(
        base_url=url,
        headers=request_headers(options.resolved_api_key()),
        timeout=options.request_timeout.total_seconds(),
    ) as http:
        try:
            params = {"since": etag} if delta and etag else None
            response = await http.get(VARIABLES_PATH, headers=fetch_headers(etag), params=params)
        except httpx.TransportError as exc:
            raise unreachable(url, exc) from None
    return read_fetch(response)


def is_transient(exc: Exception) -> bool:
    """Whether a failure is likely to heal by itself (network, 5xx, 408, 429) rather than a misconfiguration."""
    if isinstance(exc, ServerUnreachableError):
        return True
    if isinstance(exc, RemoteError) and exc.status_code is not None:
        return exc.status_code >= 500 or exc.status_code in (408, 429)
    return isinstance(exc, RemoteError)
