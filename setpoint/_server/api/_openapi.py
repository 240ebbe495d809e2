"""The OpenAPI document (``/openapi.json``), finished in one place so it describes the API as it behaves.

Routes declare only what is particular to them (their success statuses, bodies, summaries). This module
then adds, to every operation of every API router:

- its **error responses**, from what the operation has (see :func:`error_statuses`): 400 always (bad URL
  text), 401/403 when it needs an API key (no or wrong key, missing scope), 404 when it names something
  (path parameters) or writes, 409, 412 and 413 for writes, 422 when it takes input.
  Each points at the one error model of its API family (:data:`FAMILIES`): ``Error``
  (``{"detail", "errors"?}``, the app's exception handlers) for ``/v1/``, OFREP's
  ``{"errorCode", "errorDetails"}``, LaunchDarkly's ``{"code", "message"}`` for ``/api/v2/``. A route
  may declare a status itself; it is then left alone.
- the **name patterns** of path parameters (:data:`PATH_PATTERNS`), which the services enforce (an
  invalid name cannot exist: 404);
- optional parameters as plain types (FastAPI's ``anyOf [T, null]`` would tell clients to send ``null``).

A new API module needs nothing more than its router; check it with ``tests/server/test_openapi_fuzz.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from setpoint._server.services.input_limits import MAX_JSON_DEPTH
from setpoint.config import Segment

_ERROR_ITEM = {
    "type": "object",
    "required": ["loc", "msg"],
    "properties": {
        "loc": {"type": "string", "description": "Where: e.g. `body.labels.a.version`, `path.version`"},
        "msg": {"type": "string"},
    },
}
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "title": "Error",
        "description": "Every error of the `/v1/` API: `detail` says what to fix; `errors` lists each problem.",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}, "errors": {"type": "array", "items": _ERROR_ITEM}},
    },
    "OfrepError": {
        "type": "object",
        "title": "OfrepError",
        "description": "An OFREP error (`errorCode` as in the OFREP specification; absent for auth errors).",
        "required": ["errorDetails"],
        "properties": {
            "key": {"type": "string"},
            "errorCode": {"type": "string"},
            "errorDetails": {"type": "string"},
        },
    },
    "LaunchDarklyError": {
        "type": "object",
        "title": "LaunchDarklyError",
        "description": "An error of the LaunchDarkly-compatible segments API.",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    },
}
FAMILIES: tuple[tuple[str, str], ...] = (
    ("/v1/ofrep/", "OfrepError"),
    ("/v1/", "Error"),
    ("/ofrep/", "OfrepError"),
    ("/api/v2/", "LaunchDarklyError"),
)
"""Path prefix -> the error model of that API family (the first match applies)."""

DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (Segment,)
"""Models that routes taking raw JSON refer to as ``#/components/schemas/<Name>`` (``openapi_extra``)."""

_VARIABLE_NAME = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$", "maxLength": 128}
_LABEL_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"}
_SEGMENT_KEY = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}
PATH_PATTERNS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("/v1/ofrep/", "key", _VARIABLE_NAME),
    ("/v1/segments/", "key", _SEGMENT_KEY),
    ("/api/v2/segments/", "key", _SEGMENT_KEY),
    ("/v1/", "name", _VARIABLE_NAME),
    ("/v1/", "label", _LABEL_NAME),
    ("/ofrep/", "key", _VARIABLE_NAME),
)
"""(path prefix, path parameter, schema): the first match applies."""

DESCRIPTIONS = {
    400: "Bad request: the URL holds a NUL character, or the body is not what this operation takes",
    401: "No API key, or an unknown or revoked one (`Authorization: bearer <api key>`)",
    403: "The API key lacks the scope this operation needs",
    404: "Not found: the named variable, version, label, segment or key does not exist in this project",
    409: "Conflict: the name is taken, the thing is in use, or it changed at the same time",
    412: "Stale: `If-Match` (or a `revision` in the body) names a revision that is no longer current",
    413: "The request body is larger than the server's limit",
    422: (
        "Invalid input: a parameter or body field breaks its schema, a rule the schema cannot express "
        f"(references, weights), or an input limit (JSON nested more than {MAX_JSON_DEPTH} levels, NUL or "
        "lone surrogates in text, numbers above 2147483647)"
    ),
}
_WRITES = ("post", "put", "patch", "delete")


def _family(path: str) -> str | None:
    return next((model for prefix, model in FAMILIES if path.startswith(prefix)), None)


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer with (see the module docstring)."""
    parameters = operation.get("parameters", [])
    takes_input = bool(parameters) or "requestBody" in operation or method in ("post", "put", "patch")
    statuses = {400}
    if operation.get("security"):
        statuses |= {401, 403}
    if "{" in path or method in _WRITES:
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)
    if method in ("post", "put", "patch"):
        statuses.add(413)
    if method in _WRITES:  # If-Match, or a `revision` in the body (bulk writes)
        statuses.add(412)
    if takes_input:
        statuses.add(422)
    return statuses


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [T, null]`` -> ``T`` (an optional parameter is omitted, never sent as null)."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            return {**kept[0], **rest}
    return schema


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Add the error models, error responses, name patterns and plain optional parameters (in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(ERROR_SCHEMAS)
    for documented in DOCUMENTED_MODELS:
        model_schema = documented.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(model_schema.pop("$defs", {}))
        schemas[documented.__name__] = model_schema
    segment = schemas["Segment"]
    schemas["SegmentReplacement"] = {
        **segment,
        "title": "SegmentReplacement",
        "description": "A segment; `key` may be left out (the URL names it) and must match the URL when sent.",
        "required": [r for r in segment.get("required", []) if r != "key"],
    }
    for path, operations in document.get("paths", {}).items():
        family = _family(path)
        for method, operation in operations.items():
            if family is None or not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "schema" in parameter:
                    parameter["schema"] = _plain(parameter["schema"])
                if parameter.get("in") == "path":
                    pattern = next(
                        (s for prefix, n, s in PATH_PATTERNS if path.startswith(prefix) and n == parameter["name"]),
                        None,
                    )
                    if pattern is not None:
                        parameter["schema"] = {**parameter["schema"], **pattern}
            responses = operation.setdefault("responses", {})
            error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{family}"}}}
            for status in sorted(error_statuses(path, method, operation)):
                existing = responses.get(str(status))
                if existing is None or "HTTPValidationError" in str(existing):
                    responses[str(status)] = {"description": DESCRIPTIONS[status], "content": error}
                elif "content" not in existing:
                    existing["content"] = error
            if method in _WRITES and path.startswith("/v1/variables/") and "202" not in responses:
                responses["202"] = {
                    "description": "The change needs review (the project's review settings): nothing was applied; "
                    "a change request was opened (its JSON, `Location`: its URL)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            if "401" in responses:
                responses["401"].setdefault(
                    "headers", {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}}
                )
    return document
