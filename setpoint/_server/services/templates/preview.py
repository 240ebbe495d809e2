"""The value editor's preview: a draft value composed against the served config and rendered with sample
inputs, through the same core functions as the SDK (`setpoint._core.templates`)."""

from __future__ import annotations

import json
from typing import Any

from setpoint._core import templates
from setpoint._core.composed import ConfigResolver
from setpoint._core.evaluator import CompiledConfig

__all__ = ["preview"]


def preview(
    compiled: CompiledConfig,
    name: str,
    serialized: str,
    inputs: dict[str, Any] | None,
    schema: dict[str, Any] | None,
    targeting_key: str | None = None,
) -> dict[str, Any]:
    """``{"value", "error", "composed_from", "undeclared"}`` for a draft ``serialized`` value of ``name``."""
    result: dict[str, Any] = {"value": None, "error": None, "composed_from": [], "undeclared": []}
    try:
        json.loads(serialized)
    except ValueError as exc:
        result["error"] = f"the value is not valid JSON: {exc}"
        return result
    composed: tuple[templates.ComposedReference, ...] = ()
    try:
        if templates.has_references(serialized):
            serialized, composed = templates.compose(
                serialized, name, ConfigResolver(compiled, targeting_key, None), strict=True
            )
            fatal = templates.first_fatal_error(composed)
            if fatal is not None:
                raise ValueError(fatal)
        result["composed_from"] = [ref.to_json() for ref in composed]
        if schema is not None:
            result["undeclared"] = templates.undeclared_fields(serialized, schema)
        if inputs is not None and templates.has_template(serialized):
            serialized = templates.render(serialized, inputs)
        result["value"] = json.loads(serialized)
    except Exception as exc:
        result["composed_from"] = [ref.to_json() for ref in composed]
        result["error"] = str(exc)
    return result
