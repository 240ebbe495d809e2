"""Build the wire JSON (the ``VariableConfig`` shape of ``GET /v1/variables/``) from stored records."""

from __future__ import annotations

from typing import Any

from setpoint._server.storage import ReadTx
from setpoint._server.storage.records import Label, ProjectState, Segment, Variable, Version
from setpoint.config import Segment as SegmentModel


def label_wire(label: Label, latest: Version | None, pinned: Version | None) -> dict[str, Any]:
    """One label: ``{"version", "serialized_value"}`` for a pinned version, else ``{"version", "ref"}``."""
    target = label.target
    if target.target_type == "version":
        if pinned is None:  # cannot happen: versions are never deleted while their variable exists
            return {"version": None, "ref": "code_default"}
        return {"version": pinned.version, "serialized_value": pinned.serialized_value}
    if target.target_type == "latest":
        return {"version": None if latest is None else latest.version, "ref": "latest"}
    if target.target_type == "code_default":
        return {"version": None, "ref": "code_default"}
    return {"version": None, "ref": target.target_label}


def variable_wire(
    variable: Variable, labels: list[Label], latest: Version | None, pinned: dict[int, Version]
) -> dict[str, Any]:
    """A variable's ``VariableConfig`` JSON; ``pinned`` maps version numbers its labels point at to versions."""
    f = variable.fields
    data: dict[str, Any] = {
        "name": variable.name,
        "description": f.description,
        "labels": {lb.name: label_wire(lb, latest, pinned.get(lb.target.version or 0)) for lb in labels},
        "rollout": f.rollout,
        "overrides": f.overrides,
        "latest_version": None
        if latest is None
        else {"version": latest.version, "serialized_value": latest.serialized_value},
        "json_schema": f.json_schema,
        "type_name": f.type_name,
        "aliases": f.aliases,
        "example": f.example,
    }
    if f.template_inputs_schema is not None:
        data["template_inputs_schema"] = f.template_inputs_schema
    if f.external:
        data["external"] = True
    return data


def read_variable_wire(tx: ReadTx, variable: Variable) -> dict[str, Any]:
    """A variable's wire JSON read inside ``tx``."""
    labels = tx.list_labels(variable.id)
    pinned: dict[int, Version] = {}
    for lb in labels:
        if lb.target.target_type == "version" and lb.target.version is not None:
            version = tx.get_version(variable.id, lb.target.version)
            if version is not None:
                pinned[version.version] = version
    return variable_wire(variable, labels, tx.latest_version(variable.id), pinned)


_SEGMENT_FIELDS = frozenset(SegmentModel.model_fields)


def segment_wire(segment: Segment) -> dict[str, Any]:
    """A stored segment's JSON, with its key filled in (bookkeeping such as ``created_at`` is not served)."""
    return {**{k: v for k, v in segment.data.items() if k in _SEGMENT_FIELDS}, "key": segment.key}


def project_wire(state: ProjectState) -> dict[str, Any]:
    """A whole project's ``VariablesConfig`` JSON (``segments`` only when there are any)."""
    pinned: dict[int, dict[int, Version]] = {}
    for (variable_id, number), version in state.label_versions.items():
        pinned.setdefault(variable_id, {})[number] = version
    variables: dict[str, Any] = {}
    for variable in state.variables:
        variables[variable.name] = variable_wire(
            variable, state.labels.get(variable.id, []), state.latest.get(variable.id), pinned.get(variable.id, {})
        )
    data: dict[str, Any] = {"variables": variables}
    if state.segments:
        data["segments"] = {s.key: segment_wire(s) for s in state.segments}
    return data
