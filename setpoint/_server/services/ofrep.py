"""OFREP (OpenFeature Remote Evaluation Protocol) evaluation: a request context in, OFREP JSON out.

Evaluation goes through the same core as the SDK (`setpoint._core.evaluator`), so a user gets the same label
over OFREP as in-process. Mapping:

* ``context.targetingKey`` is the targeting key; every other context field is an attribute, and a nested
  object ``{"organization": {"key": "o1"}}`` also gives the dotted attributes ``organization.key`` that
  segments of context kind ``organization`` read.
* ``variant`` is the label; ``metadata.version`` the version.
* ``reason``: ``STATIC`` when the variable serves the same label to everyone, ``TARGETING_MATCH`` when an
  override matched, ``SPLIT`` when a percentage rollout picked the label, ``DEFAULT`` when the default rollout
  serves one label to everyone that no override matched.
* The code default lives in the application, so a variable resolving to it answers ``reason: DEFAULT`` with
  no ``value`` (OFREP's code-default flag, ADR 0006): the provider then returns the caller's default.
  ``variant`` is the label that points at the code default, or ``code_default`` (a reserved label name).
* Errors: unknown variable -> 404 ``FLAG_NOT_FOUND``; a percentage rollout with no ``targetingKey`` ->
  400 ``TARGETING_KEY_MISSING`` (a server cannot bucket consistently without one); a body that is not a JSON
  object, or a stored value that is not JSON -> 400 ``PARSE_ERROR``; a ``context`` that is not an object or a
  ``targetingKey`` that is not a string -> 400 ``INVALID_CONTEXT``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from setpoint._core.composed import evaluate_composed
from setpoint._core.evaluator import CompiledConfig
from setpoint._core.jsonvalues import loads_finite
from setpoint.config import Rollout
from setpoint.config._variables import WEIGHT_TOLERANCE

__all__ = ["CODE_DEFAULT_VARIANT", "Context", "ContextError", "bulk_etag", "evaluate_all", "evaluate_flag", "parse"]

CODE_DEFAULT_VARIANT = "code_default"


class ContextError(ValueError):
    """The request body is unusable; ``code`` is ``PARSE_ERROR`` or ``INVALID_CONTEXT``."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Context:
    """A parsed evaluation context."""

    targeting_key: str | None
    attributes: dict[str, Any]


def _flatten(prefix: str, value: Mapping[str, Any], out: dict[str, Any]) -> None:
    for name, item in value.items():
        dotted = f"{prefix}.{name}"
        out.setdefault(dotted, item)
        if isinstance(item, Mapping):
            _flatten(dotted, item, out)


def parse(raw: bytes) -> Context:
    """The context of a request body ``{"context": {"targetingKey": ..., ...}}`` (an empty body is no context)."""
    if not raw.strip():
        return Context(None, {})
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ContextError("PARSE_ERROR", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ContextError("PARSE_ERROR", 'the request body must be a JSON object: {"context": {...}}')
    context = body.get("context")
    if context is None:
        return Context(None, {})
    if not isinstance(context, dict):
        raise ContextError("INVALID_CONTEXT", f"'context' must be an object, got {type(context).__name__}")
    key = context.get("targetingKey")
    if key is not None and not isinstance(key, str):
        raise ContextError("INVALID_CONTEXT", f"'context.targetingKey' must be a string, got {key!r}")
    attributes = {name: value for name, value in context.items() if name != "targetingKey"}
    for name, value in list(attributes.items()):
        if isinstance(value, Mapping):
            _flatten(name, value, attributes)
    return Context(key, attributes)


def _splits(rollout: Rollout) -> bool:
    """Whether the rollout needs a targeting key (it is not one label for everyone, nor nothing)."""
    weights = [w for w in rollout.labels.values() if w > 0]
    return bool(weights) and not (len(weights) == 1 and weights[0] >= 1 - WEIGHT_TOLERANCE)


def _failure(key: str, code: str, details: str) -> dict[str, Any]:
    return {"key": key, "errorCode": code, "errorDetails": details}


def evaluate_flag(
    compiled: CompiledConfig, key: str, context: Context, *, external_only: bool = False
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, OFREP body) for one flag: a success, or a failure with ``errorCode``.

    With ``external_only`` (a ``read_external`` key) a variable not marked external is answered exactly as an
    absent one, so such a key cannot tell internal variables from missing ones.
    """
    variable = compiled.get(key)
    if variable is None or (external_only and not variable.config.external):
        return 404, _failure(key, "FLAG_NOT_FOUND", f"no variable (flag) called {key!r} in this project")
    composed = evaluate_composed(compiled, key, context.targeting_key, context.attributes, external_only=external_only)
    ev = composed.evaluation
    config = variable.config
    rollout = config.rollout if ev.override_index is None else config.overrides[ev.override_index].rollout
    if context.targeting_key is None and _splits(rollout):
        where = "the default rollout" if ev.override_index is None else f"override #{ev.override_index + 1}"
        return 400, _failure(
            key,
            "TARGETING_KEY_MISSING",
            f"{key!r}: {where} splits traffic by percentage, which needs context.targetingKey",
        )
    if composed.error is not None:
        # a read_external key must not learn the names of the (possibly internal) variables composed in
        details = "its @{references}@ cannot be expanded" if external_only else composed.error
        return 400, _failure(key, "GENERAL", f"{key!r}: {details}; serve your default value")
    metadata: dict[str, Any] = {"detail": ev.detail}
    if composed.composed_from and not external_only:
        metadata["composed_from"] = json.dumps([ref.to_json() for ref in composed.composed_from])
    if ev.version is not None:
        metadata["version"] = ev.version
    if ev.override_index is not None:
        metadata["override"] = ev.override_index
    body: dict[str, Any] = {"key": key, "variant": ev.label or CODE_DEFAULT_VARIANT, "metadata": metadata}
    if composed.serialized_value is None:
        body["reason"] = "DEFAULT"
        return 200, body
    try:
        body["value"] = loads_finite(composed.serialized_value)
    except ValueError as exc:
        return 400, _failure(key, "PARSE_ERROR", f"the value of {key!r} (label {ev.label!r}) is not JSON: {exc}")
    if variable.is_static and not composed.composed_from:
        body["reason"] = "STATIC"
    elif ev.override_index is not None:
        body["reason"] = "TARGETING_MATCH"
    elif _splits(config.rollout):
        body["reason"] = "SPLIT"
    else:
        body["reason"] = "DEFAULT"
    return 200, body


def evaluate_all(compiled: CompiledConfig, context: Context, *, external_only: bool = False) -> dict[str, Any]:
    """The bulk answer ``{"flags": [...]}``: every variable (only the external ones with ``external_only``),
    successes and per-flag failures."""
    names = sorted(compiled.names())
    if external_only:
        names = [n for n in names if (v := compiled.get(n)) is not None and v.config.external]
    return {"flags": [evaluate_flag(compiled, name, context, external_only=external_only)[1] for name in names]}


def bulk_etag(body: bytes) -> str:
    """A strong ETag of a bulk answer (it depends only on the config and the context)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
