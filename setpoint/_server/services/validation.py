"""Validation of variables and values: the config model's rules and the variable's JSON schema."""

from __future__ import annotations

from typing import Any

import jsonschema
from pydantic import ValidationError

from setpoint._core.jsonvalues import STORED_CONFIG, NonFiniteNumberError, check_finite, check_serialized
from setpoint._server.services import input_limits
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.wire import project_wire
from setpoint._server.storage import ReadTx
from setpoint.config import Segment, VariableConfig, VariablesConfig


def pydantic_errors(exc: ValidationError, prefix: str) -> list[dict[str, Any]]:
    """Pydantic errors as JSON-safe dicts with a dotted location."""
    return [
        {"loc": ".".join([prefix, *(str(p) for p in err["loc"])]).strip("."), "msg": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def check_variable_config(data: dict[str, Any]) -> VariableConfig:
    """Validate a prospective variable with the config model; 422 listing every problem."""
    try:
        return VariableConfig.model_validate(data)
    except ValidationError as exc:
        errors = pydantic_errors(exc, "")
        summary = "; ".join(f"{e['loc'] or 'variable'}: {e['msg']}" for e in errors)
        raise InvalidError(f"invalid variable {data.get('name')!r}: {summary}", errors=errors) from None


def check_json_schema(schema: dict[str, Any], where: str) -> None:
    """Reject a JSON schema that is not itself valid (or holds NaN or Infinity)."""
    try:
        check_finite(schema, where)
    except NonFiniteNumberError as exc:
        raise InvalidError(str(exc)) from None
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidError(f"{where} is not a valid JSON schema: {exc.message}") from None


def check_value(serialized_value: str, schema: dict[str, Any] | None, where: str) -> None:
    """The value must be JSON (finite numbers only) and valid against ``schema`` (when there is one)."""
    try:
        check_serialized(serialized_value, where)
    except NonFiniteNumberError as exc:
        raise InvalidError(str(exc), errors=[{"loc": "serialized_value", "msg": str(exc)}]) from None
    try:
        value = input_limits.loads(serialized_value, f"{where}: serialized_value")
    except ValueError as exc:
        raise InvalidError(
            f"{where}: serialized_value is not valid JSON ({exc}); send the value JSON-encoded"
        ) from None
    if schema is None:
        return
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise InvalidError(
            f"{where}: value does not match the variable's JSON schema at {path}: {first.message}",
            errors=[{"loc": "/".join(str(p) for p in e.absolute_path), "msg": e.message} for e in errors[:20]],
        )


def check_references(tx: ReadTx, project_id: int, config: VariableConfig) -> None:
    """What one variable's config cannot check alone: its aliases against the project's other variables (and
    theirs against its name), and that the segments its overrides name exist."""
    names = {config.name, *(config.aliases or ())}
    taken = {
        name: aliases
        for name, aliases in tx.variables_named_or_aliased(project_id, names).items()
        if name != config.name
    }
    for alias in config.aliases or ():
        if alias in taken:
            raise InvalidError(f"alias {alias!r} of {config.name!r} is the name of another variable; choose another")
        owner = next((name for name, aliases in taken.items() if alias in aliases), None)
        if owner is not None:
            raise InvalidError(f"alias {alias!r} is already an alias of {owner!r}; remove it there first")
    owner = next((name for name, aliases in taken.items() if config.name in aliases), None)
    if owner is not None:
        raise InvalidError(f"{config.name!r} is an alias of variable {owner!r}; remove the alias there first")
    referenced = config.segment_references()
    missing = sorted(referenced - tx.segment_keys(project_id)) if referenced else []
    if missing:
        raise InvalidError(f"overrides name unknown segment(s) {', '.join(missing)}; create them first")


def check_variable_write(tx: ReadTx, project_id: int, data: dict[str, Any]) -> VariableConfig:
    """Everything a write of one variable must pass before it commits, looking only at what it touches: the
    variable's own config (labels, refs, rollout, overrides) and its references to the rest of the project
    (aliases, segments). Its cost does not depend on the size of the project.

    Every write of a variable goes through `check_references` (creates and replaces call it directly with the
    config they validated): that is the place for further checks of references to the rest of the project.
    """
    config = check_variable_config(data)
    check_references(tx, project_id, config)
    return config


def _stored_segment_references(data: dict[str, Any]) -> set[str]:
    """`Segment.referenced_segments` of a stored (already validated) segment document, without re-validating it."""
    return {
        str(value)
        for rule in data.get("rules") or []
        for clause in rule.get("clauses") or []
        if clause.get("op") == "segmentMatch"
        for value in clause.get("values") or []
    }


def check_segment_write(tx: ReadTx, project_id: int, segment: Segment) -> None:
    """A stored (or about to be stored) segment's references: the segments it names exist and it is not part
    of a cycle. Only the segments reachable from it are read (the rest of the graph was acyclic already)."""
    missing: list[str] = []
    seen: set[str] = set()
    stack = [(child, [segment.key, child]) for child in sorted(segment.referenced_segments())]
    while stack:
        key, path = stack.pop()
        if key == segment.key:
            raise InvalidError(f"segments refer to each other in a cycle: {' -> '.join(path)}")
        if key in seen:
            continue
        seen.add(key)
        record = tx.get_segment(project_id, key)
        if record is None:
            missing.append(key)
            continue
        children = _stored_segment_references(record.data)
        stack.extend((child, [*path, child]) for child in sorted(children))
    if missing:
        raise InvalidError(f"segment {segment.key!r} refers to unknown segment(s): {', '.join(sorted(missing))}")


def check_project(tx: ReadTx, project_id: int) -> VariablesConfig:
    """Validate a project's whole config as it would be served (aliases, segment references) inside ``tx``.

    Reads and validates the whole project: writes use `check_variable_write` / `check_segment_write`, which
    look only at what a change touches.
    """
    data = project_wire(tx.load_project_state(project_id))
    try:
        return VariablesConfig.model_validate(data, context={STORED_CONFIG: True})
    except ValidationError as exc:
        errors = pydantic_errors(exc, "")
        summary = "; ".join(f"{e['loc'] or 'config'}: {e['msg']}" for e in errors)
        raise InvalidError(f"this change would make the project's config invalid: {summary}", errors=errors) from None
