"""Server-side resolution with an explanation: the same evaluation core and bucketing as the SDK, run on the
project's served snapshot. Used by ``POST /v1/resolve/`` and the web UI's simulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from setpoint._core.evaluator import CompiledConfig, compile_config
from setpoint._server.services import input_limits
from setpoint._server.services.errors import InvalidError, NotFoundError
from setpoint.config import VariablesConfig


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
        }


_COMPILED: dict[int, tuple[VariablesConfig, CompiledConfig]] = {}


def _compiled(project_id: int, config: VariablesConfig) -> CompiledConfig:
    cached = _COMPILED.get(project_id)
    if cached is not None and cached[0] is config:
        return cached[1]
    compiled = compile_config(config)
    _COMPILED[project_id] = (config, compiled)
    return compiled


def resolve(
    project_id: int,
    config: VariablesConfig,
    targeting_key: str | None,
    attributes: dict[str, Any] | None,
    names: list[str] | None = None,
    label: str | None = None,
) -> list[Resolution]:
    """Resolve ``names`` (default: every variable) for a targeting key and attributes.

    Without a targeting key, a percentage rollout draws at random (as the SDK does).
    """
    compiled = _compiled(project_id, config)
    wanted = names if names else compiled.names()
    results = []
    for name in wanted:
        if compiled.get(name) is None:
            raise NotFoundError(f"variable {name!r} does not exist in this project")
        ev = compiled.evaluate(name, targeting_key, attributes, label=label)
        results.append(
            Resolution(
                name=name,
                label=ev.label,
                version=ev.version,
                serialized_value=ev.serialized_value,
                reason=ev.reason,
                detail=ev.detail,
                override_index=ev.override_index,
                rule=ev.rule,
                explanation=ev.explain(),
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


def literal(raw: str) -> Any:
    """A typed literal: JSON when it parses (numbers, true/false, null, "quoted"), else the text itself."""
    try:
        return input_limits.loads(raw, "attribute value")
    except ValueError:
        return raw
