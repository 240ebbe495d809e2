"""Read models for the management UI and API: variable summaries, versions with their labels and descriptions,
diffs between versions, a variable's history, and value validation without saving."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import InvalidError, NotFoundError
from setpoint._server.services.validation import check_value
from setpoint._server.services.variables import effective_schema
from setpoint._server.storage import ReadTx
from setpoint._server.storage.records import AuditEntry, Label, LabelMove, Variable, Version

VALUE_KINDS = ("text", "number", "boolean", "json")
"""The value types offered when creating a variable (besides a pushed variable type)."""


@dataclass(frozen=True)
class VersionInfo:
    """A version with its description and the labels that currently reach it."""

    version: int
    serialized_value: str
    created_by: str
    created_at: datetime
    description: str | None
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VariableSummary:
    """One row of the variables list."""

    name: str
    description: str | None
    kind: str
    """``text``, ``number``, ``boolean``, ``json`` or ``type:<name>`` for a pushed variable type."""
    serves: str
    """What the default rollout serves, in words (e.g. ``production 90% · canary 10%``)."""
    label_count: int
    version_count: int
    latest_version: int | None
    revision: int
    has_overrides: bool


def value_kind(json_schema: dict[str, Any] | None, type_name: str | None) -> str:
    """The value type shown for a variable, from its schema."""
    if type_name:
        return f"type:{type_name}"
    schema_type = (json_schema or {}).get("type")
    if schema_type == "string":
        return "text"
    if schema_type in ("number", "integer"):
        return "number"
    if schema_type == "boolean":
        return "boolean"
    return "json"


def schema_for_kind(kind: str, json_schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema stored for a new variable of a value type (JSON takes the optional user schema)."""
    if kind == "text":
        return {"type": "string"}
    if kind == "number":
        return {"type": "number"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "json":
        return json_schema
    raise InvalidError(f"unknown value type {kind!r}; choose one of {', '.join(VALUE_KINDS)} or a pushed type")


def rollout_words(rollout: dict[str, Any]) -> str:
    """A rollout in words: each label's percentage, then the code-default remainder if any."""
    labels = {k: float(v) for k, v in (rollout.get("labels") or {}).items() if float(v) > 0}
    parts = [f"{label} {weight * 100:g}%" for label, weight in labels.items()]
    remainder = 1.0 - sum(labels.values())
    if remainder > 1e-9:
        parts.append(f"code default {remainder * 100:g}%")
    return " · ".join(parts) if parts else "code default"


def _summary(tx: ReadTx, variable: Variable) -> VariableSummary:
    versions = tx.list_versions(variable.id)
    f = variable.fields
    return VariableSummary(
        name=variable.name,
        description=f.description,
        kind=value_kind(f.json_schema, f.type_name),
        serves=rollout_words(f.rollout),
        label_count=len(tx.list_labels(variable.id)),
        version_count=len(versions),
        latest_version=versions[-1].version if versions else None,
        revision=variable.revision,
        has_overrides=bool(f.overrides),
    )


def list_summaries(ctx: ServiceContext, project_id: int, query: str = "") -> list[VariableSummary]:
    """The variables list, filtered by ``query`` (in the name, description or aliases; case-insensitive)."""
    needle = query.strip().lower()
    with ctx.storage.read() as tx:
        rows = []
        for variable in tx.list_variables(project_id):
            haystack = " ".join([variable.name, variable.fields.description or "", *(variable.fields.aliases or [])])
            if needle and needle not in haystack.lower():
                continue
            rows.append(_summary(tx, variable))
        return rows


def get_record(ctx: ServiceContext, project_id: int, name: str) -> Variable:
    """The stored variable; 404 when missing."""
    with ctx.storage.read() as tx:
        variable = tx.get_variable(project_id, name)
    if variable is None:
        raise NotFoundError(f"variable {name!r} does not exist in this project")
    return variable


def reached_versions(labels: list[Label], latest: int | None) -> dict[str, int | None]:
    """The version each label finally reaches (following refs); None for the code default."""
    by_name = {lb.name: lb for lb in labels}
    out: dict[str, int | None] = {}
    for label in labels:
        current: Label | None = label
        reached: int | None = None
        for _ in range(len(labels) + 1):
            if current is None:
                break
            target = current.target
            if target.target_type == "version":
                reached = target.version
                break
            if target.target_type == "latest":
                reached = latest
                break
            if target.target_type == "code_default":
                break
            current = by_name.get(target.target_label or "")
        out[label.name] = reached
    return out


def list_version_info(ctx: ServiceContext, project_id: int, name: str) -> list[VersionInfo]:
    """Versions newest first, with descriptions and the labels that reach each."""
    with ctx.storage.read() as tx:
        variable = tx.get_variable(project_id, name)
        if variable is None:
            raise NotFoundError(f"variable {name!r} does not exist in this project")
        versions = tx.list_versions(variable.id)
        labels = tx.list_labels(variable.id)
    reached = reached_versions(labels, versions[-1].version if versions else None)
    return [
        VersionInfo(
            version=v.version,
            serialized_value=v.serialized_value,
            created_by=v.created_by,
            created_at=v.created_at,
            description=v.description,
            labels=[label for label, number in reached.items() if number == v.version],
        )
        for v in reversed(versions)
    ]


def list_labels(ctx: ServiceContext, project_id: int, name: str) -> list[Label]:
    """A variable's labels, in creation order."""
    with ctx.storage.read() as tx:
        variable = tx.get_variable(project_id, name)
        if variable is None:
            raise NotFoundError(f"variable {name!r} does not exist in this project")
        return tx.list_labels(variable.id)


def pretty(serialized_value: str) -> str:
    """A serialized value indented for reading (as is when it is not JSON)."""
    try:
        return json.dumps(json.loads(serialized_value), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return serialized_value


def _get_version(tx: ReadTx, variable: Variable, number: int) -> Version:
    version = tx.get_version(variable.id, number)
    if version is None:
        raise NotFoundError(f"version {number} of {variable.name!r} does not exist")
    return version


def diff_versions(ctx: ServiceContext, project_id: int, name: str, old: int, new: int) -> list[str]:
    """A unified diff (difflib) of two versions' values, pretty-printed; empty when they are equal."""
    with ctx.storage.read() as tx:
        variable = tx.get_variable(project_id, name)
        if variable is None:
            raise NotFoundError(f"variable {name!r} does not exist in this project")
        a, b = _get_version(tx, variable, old), _get_version(tx, variable, new)
    return list(
        difflib.unified_diff(
            pretty(a.serialized_value).splitlines(),
            pretty(b.serialized_value).splitlines(),
            fromfile=f"version {old}",
            tofile=f"version {new}",
            lineterm="",
        )
    )


def validate_value(ctx: ServiceContext, project_id: int, name: str, serialized_value: str) -> list[dict[str, Any]]:
    """Problems a value would have as a new version of ``name`` (empty when it would be accepted)."""
    with ctx.storage.read() as tx:
        variable = tx.get_variable(project_id, name)
        if variable is None:
            raise NotFoundError(f"variable {name!r} does not exist in this project")
        schema = effective_schema(tx, project_id, variable.fields.json_schema, variable.fields.type_name)
    try:
        check_value(serialized_value, schema, "value")
    except InvalidError as exc:
        return exc.errors or [{"loc": "", "msg": exc.message}]
    return []


@dataclass(frozen=True)
class History:
    """A variable's audit entries (newest first) and its label moves (newest first)."""

    entries: list[AuditEntry]
    moves: list[LabelMove]


def variable_history(ctx: ServiceContext, project_id: int, name: str, limit: int = 200) -> History:
    """Every recorded change of a variable with who and when."""
    with ctx.storage.read() as tx:
        entries = tx.list_audit(project_id, entity_type="variable", entity_name=name, limit=limit)
        variable = tx.get_variable(project_id, name)
        moves = [] if variable is None else list(reversed(tx.label_history(variable.id)))
    if variable is None and not entries:
        raise NotFoundError(f"variable {name!r} does not exist in this project")
    return History(entries=entries, moves=moves)


def describe_change(entry: AuditEntry) -> str:
    """One line saying what an audit entry changed."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    if entry.action in ("create_version", "restore_version"):
        old = (before.get("latest_version") or {}).get("version")
        new = (after.get("latest_version") or {}).get("version")
        verb = "restored an earlier value as" if entry.action == "restore_version" else "created"
        return f"{verb} version {new}" + (f" (latest was {old})" if old else "")
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    words = {
        "create": "created the variable",
        "delete": "deleted the variable",
        "rename": "renamed the variable",
    }
    if entry.action in words:
        return words[entry.action]
    return f"{entry.action.replace('_', ' ')}: changed {', '.join(changed) or 'nothing'}"
