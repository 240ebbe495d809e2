"""Server-side resolution with an explanation: the same evaluation core and bucketing as the SDK, run on the
project's served snapshot (its compiled config, `Snapshot.compiled`). Used by ``POST /v1/resolve/`` and the
web UI's simulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from setpoint._core.composed import evaluate_composed
from setpoint._core.evaluator import CompiledConfig
from setpoint._core.templates import ComposedReference
from setpoint._server.services import input_limits
from setpoint._server.services.errors import InvalidError, NotFoundError


@dataclass(frozen=True)
class Resolution:
    """What one variable serves for a targeting key and attributes, and why."""

    name: str
    label: str | None
    version: int | None
    serialized_value: str | None
    reason: str
    detail: str
    override_index: int | None
    rule: str | None
    explanation: str
    composed_from: tuple[ComposedReference, ...] = ()
    """The ``@{references}@`` expanded to build the value."""
    error: str | None = None
    """Why the configured value cannot be served (composition or template rendering failed)."""
    template_inputs_schema: dict[str, Any] | None = None

    @property
    def value(self) -> Any:
        """The deserialized value (None when the code default is served)."""
        return None if self.serialized_value is None else json.loads(self.serialized_value)

    def to_json(self) -> dict[str, Any]:
        """The API's JSON form."""
        return {
            "name": self.name,
            "label": self.label,
            "version": self.version,
            "value": self.value,
            "serialized_value": self.serialized_value,
            "reason": self.reason,
            "detail": self.detail,
            "matched_override": self.override_index,
            "rule": self.rule,
            "explanation": self.explanation,
            "composed_from": [ref.to_json() for ref in self.composed_from],
            "error": self.error,
        }


def resolve(
    compiled: CompiledConfig,
    targeting_key: str | None,
    attributes: dict[str, Any] | None,
    names: list[str] | None = None,
    label: str | None = None,
    inputs: dict[str, Any] | None = None,
) -> list[Resolution]:
    """Resolve ``names`` (default: every variable) for a targeting key and attributes, with ``@{references}@``
    expanded as the SDK does; ``inputs`` (template inputs) also renders the ``{{fields}}`` of every template
    variable (one with a ``template_inputs_schema``).

    ``compiled`` is the project's served config, compiled (`Snapshot.compiled`). Without a targeting key, a
    percentage rollout draws at random (as the SDK does). Every variable is resolved in name order.
    """
    wanted = names if names else sorted(compiled.names())
    results = []
    for name in wanted:
        if compiled.get(name) is None:
            raise NotFoundError(f"variable {name!r} does not exist in this project")
        variable = compiled.get(name)
        schema = variable.config.template_inputs_schema if variable is not None else None
        render = inputs if schema is not None else None
        composed = evaluate_composed(compiled, name, targeting_key, attributes, label=label, inputs=render)
        ev = composed.evaluation
        explanation = ev.explain()
        if composed.error is not None:
            explanation += f" But {composed.error}, so the code default is served."
        results.append(
            Resolution(
                name=name,
                label=ev.label if composed.error is None else None,
                version=ev.version if composed.error is None else None,
                serialized_value=composed.serialized_value,
                reason=composed.reason,
                detail=ev.detail,
                override_index=ev.override_index,
                rule=ev.rule,
                explanation=explanation,
                composed_from=composed.composed_from,
                error=composed.error,
                template_inputs_schema=schema,
            )
        )
    return results


def parse_attributes(text: str) -> dict[str, Any]:
    """Attributes typed into a form: a JSON object, or ``key=value`` lines (values read as JSON when they
    parse, else as text); blank means none."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = input_limits.loads(text, "attributes")
        except ValueError as exc:
            raise InvalidError(f"attributes are not a valid JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidError("attributes must be a JSON object")
        return data
    attributes: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.strip():
            raise InvalidError(f"attributes line {number} is not key=value: {line!r}")
        attributes[key.strip()] = literal(raw.strip())
    return attributes


def parse_inputs(text: str) -> dict[str, Any] | None:
    """Template inputs typed into a form: a JSON object; blank means none (templates are not rendered)."""
    if not text.strip():
        return None
    try:
        data = input_limits.loads(text, "template inputs")
    except ValueError as exc:
        raise InvalidError(f"template inputs are not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidError('template inputs must be a JSON object, e.g. {"user_name": "Ada"}')
    return data


def literal(raw: str) -> Any:
    """A typed literal: JSON when it parses (numbers, true/false, null, "quoted"), else the text itself."""
    try:
        return input_limits.loads(raw, "attribute value")
    except ValueError:
        return raw
