"""Variables: create, replace (with label targets), delete, new versions, label moves.

Every write is one transaction: the variable row is locked (PostgreSQL ``FOR UPDATE``; SQLite takes the
write lock at ``BEGIN IMMEDIATE``), an ``If-Match`` revision is checked (412 when stale), the whole project
config is validated before commit, the change is audited and announced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from setpoint._server.services import audit
from setpoint._server.services.change_requests.review import ReviewRequired
from setpoint._server.services.changes import Change, EventName
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    PreconditionFailedError,
    ServiceError,
)
from setpoint._server.services.logfire_compat import HiddenOverrideConflictError, merge_logfire_overrides
from setpoint._server.services.models import BulkVariableIn, LabelTargetIn, VariableIn, VersionIn
from setpoint._server.services.templates import check_composition, check_not_referenced
from setpoint._server.services.validation import check_json_schema, check_references, check_value, check_variable_config
from setpoint._server.services.wire import read_variable_wire
from setpoint._server.storage import AlreadyExistsError, ReadTx, WriteTx
from setpoint._server.storage.records import LabelMove, LabelTarget, Variable, VariableFields, Version
from setpoint.config import RESERVED_LABELS, VariableConfig


@dataclass(frozen=True)
class VariableView:
    """A variable's wire JSON with its revision (the ``ETag`` of ``GET /v1/variables/{name}/``)."""

    wire: dict[str, Any]
    revision: int


def _announce(ctx: ServiceContext, tx: WriteTx, project_id: int, event: EventName, name: str) -> Change:
    change = Change(project_id=project_id, entity="variable", event=event, name=name)
    ctx.sink.record(tx, change)
    return change


def _check_if_match(variable: Variable, if_match: int | None) -> None:
    if if_match is not None and if_match != variable.revision:
        raise PreconditionFailedError(
            f"variable {variable.name!r} is at revision {variable.revision}, not {if_match} (If-Match): "
            "someone changed it since you read it; fetch it again and reapply your change"
        )


def _require(tx: ReadTx | WriteTx, project_id: int, name: str, *, lock: bool = False) -> Variable:
    variable = (
        tx.lock_variable(project_id, name) if lock and isinstance(tx, WriteTx) else tx.get_variable(project_id, name)
    )
    if variable is None:
        raise NotFoundError(f"variable {name!r} does not exist in this project; create it with POST /v1/variables/")
    return variable


def effective_schema(tx: ReadTx, project_id: int, json_schema: dict[str, Any] | None, type_name: str | None) -> Any:
    """The schema values are validated against: the variable's own, else its variable type's.

    A ``type_name`` must name a variable type of the project.
    """
    if type_name is None:
        return json_schema
    vtype = tx.get_type(project_id, type_name)
    if vtype is None:
        raise InvalidError(
            f"type_name {type_name!r} is not a variable type of this project; push it first (POST /v1/variable-types/)"
        )
    return json_schema if json_schema is not None else vtype.json_schema


def _probe_label(target: LabelTargetIn) -> dict[str, Any]:
    if target.target_type == "version":
        return {"version": target.version or 1, "serialized_value": target.serialized_value or "null"}
    if target.target_type == "label":
        return {"ref": target.target_label}
    return {"ref": target.target_type}


def _validated_fields(body: VariableIn, current: Variable | None = None) -> tuple[VariableFields, VariableConfig]:
    probe = {
        "name": body.name,
        "description": body.description,
        "labels": {name: _probe_label(target) for name, target in body.labels.items()},
        "rollout": body.rollout,
        "overrides": body.overrides,
        "json_schema": body.json_schema,
        "type_name": body.type_name,
        "aliases": body.aliases,
        "example": body.example,
    }
    config = check_variable_config(probe)
    if body.json_schema is not None:
        check_json_schema(body.json_schema, "json_schema")
    if body.template_inputs_schema is not None:
        check_json_schema(body.template_inputs_schema, "template_inputs_schema")
    fields = VariableFields(
        description=body.description,
        json_schema=body.json_schema,
        type_name=body.type_name,
        aliases=body.aliases,
        example=body.example,
        template_inputs_schema=body.template_inputs_schema,
        rollout=config.rollout.model_dump(mode="json"),
        overrides=[o.model_dump(mode="json") for o in config.overrides],
        external=body.external if body.external is not None else current is not None and current.fields.external,
    )
    return fields, config


def _resolve_version_targets(
    tx: WriteTx, variable: Variable, labels: dict[str, LabelTargetIn], schema: Any, actor: str
) -> dict[str, int]:
    """Version numbers for labels with ``target_type`` version; values not stored yet become new versions.

    Requested numbers are honoured where they can be (a fresh variable gets versions 1..n in that order);
    an existing number with a different value gets a new version instead (versions are immutable).
    """
    numbers: dict[str, int] = {}
    created: dict[str, int] = {}
    targets = [(name, t) for name, t in labels.items() if t.target_type == "version"]
    targets.sort(key=lambda item: (item[1].version is None, item[1].version or 0))
    for name, target in targets:
        existing = None if target.version is None else tx.get_version(variable.id, target.version)
        if target.serialized_value is None:
            if existing is None:
                raise InvalidError(
                    f"label {name!r}: version {target.version} of {variable.name!r} does not exist; "
                    "send serialized_value to create a new version"
                )
            numbers[name] = existing.version
        elif existing is not None and existing.serialized_value == target.serialized_value:
            numbers[name] = existing.version
        elif target.serialized_value in created:
            numbers[name] = created[target.serialized_value]
        else:
            check_value(target.serialized_value, schema, f"variable {variable.name!r}, label {name!r}")
            version = tx.create_version(variable.id, target.serialized_value, actor)
            created[target.serialized_value] = numbers[name] = version.version
    return numbers


def _apply_labels(tx: WriteTx, variable: Variable, labels: dict[str, LabelTargetIn], schema: Any, actor: str) -> None:
    numbers = _resolve_version_targets(tx, variable, labels, schema, actor)
    for existing in tx.list_labels(variable.id):
        if existing.name not in labels:
            tx.delete_label(variable.id, existing.name, actor)
    for name, target in labels.items():
        if target.target_type == "version":
            stored = LabelTarget("version", version=numbers[name])
        elif target.target_type == "label":
            stored = LabelTarget("label", target_label=target.target_label)
        else:
            stored = LabelTarget(target.target_type)
        tx.set_label(variable.id, name, stored, actor)


def get_variable(ctx: ServiceContext, project_id: int, name: str) -> VariableView:
    """One variable's wire JSON and revision."""
    with ctx.storage.read() as tx:
        variable = _require(tx, project_id, name)
        return VariableView(read_variable_wire(tx, variable), variable.revision)


def _insert(
    ctx: ServiceContext, tx: WriteTx, project_id: int, body: VariableIn, actor: str, *, check: bool = True
) -> tuple[VariableView, Change]:
    fields, config = _validated_fields(body)
    schema = effective_schema(tx, project_id, body.json_schema, body.type_name)
    try:
        variable = tx.insert_variable(project_id, body.name, fields)
    except AlreadyExistsError:
        raise ConflictError(f"variable {body.name!r} was just created by someone else") from None
    check_references(tx, project_id, config)
    _apply_labels(tx, variable, body.labels, schema, actor)
    after = read_variable_wire(tx, variable)
    if check:
        check_composition(tx, project_id, after)
    audit.record(tx, project_id, actor, "create", "variable", body.name, None, after)
    return VariableView(after, variable.revision), _announce(ctx, tx, project_id, "created", body.name)


def _replace(
    ctx: ServiceContext,
    tx: WriteTx,
    project_id: int,
    current: Variable,
    body: VariableIn,
    actor: str,
    *,
    check: bool = True,
) -> tuple[VariableView, Change]:
    fields, config = _validated_fields(body, current)
    schema = effective_schema(tx, project_id, body.json_schema, body.type_name)
    before = read_variable_wire(tx, current)
    check_references(tx, project_id, config)
    variable = tx.update_variable(current, fields)
    _apply_labels(tx, variable, body.labels, schema, actor)
    after = read_variable_wire(tx, variable)
    if check:
        check_composition(tx, project_id, after)
    audit.record(tx, project_id, actor, "update", "variable", current.name, before, after)
    return VariableView(after, variable.revision), _announce(ctx, tx, project_id, "updated", current.name)


def create_variable(ctx: ServiceContext, project_id: int, body: VariableIn, actor: str) -> VariableView:
    """Create a variable (with any labels and the versions they carry); 409 if the name is taken."""
    _validated_fields(body)
    with ctx.storage.write() as tx:
        if tx.get_variable(project_id, body.name) is not None:
            raise ConflictError(f"variable {body.name!r} already exists; change it with PUT /v1/variables/{body.name}/")
        view, change = _insert(ctx, tx, project_id, body, actor)
    ctx.sink.applied(change)
    return view


_Body = TypeVar("_Body", bound=VariableIn)

_LOGFIRE_UNSENT = ("json_schema", "type_name", "aliases", "example", "template_inputs_schema")
"""Fields the Logfire SDK leaves out of a PUT body when it has no value for them (it never sends type_name)."""


def _label_target(wire: dict[str, Any]) -> LabelTargetIn:
    if "ref" not in wire:
        return LabelTargetIn(target_type="version", version=wire["version"])
    if wire["ref"] in RESERVED_LABELS:
        return LabelTargetIn(target_type=wire["ref"])
    return LabelTargetIn(target_type="label", target_label=wire["ref"])


def _keep_unseen(tx: WriteTx, project_id: int, current: Variable, body: _Body) -> _Body:
    """A Logfire client's PUT with what that client never saw or cannot send kept from ``current``: overrides
    it was not served (or was served rewritten), and the fields its SDK leaves out of the body."""
    stored = current.fields.overrides
    segments: dict[str, Any] = {}
    if any(c.get("kind") in ("in-segment", "not-in-segment") for o in stored for c in o.get("conditions", [])):
        segments = {record.key: record.data for record in tx.list_segments(project_id)}
    try:
        overrides = merge_logfire_overrides(stored, body.overrides, segments)
    except HiddenOverrideConflictError as exc:
        raise ConflictError(f"variable {current.name!r}: {exc}") from None
    update: dict[str, Any] = {"overrides": overrides}
    for field in _LOGFIRE_UNSENT:
        if field not in body.model_fields_set:
            update[field] = getattr(current.fields, field)
    if "labels" not in body.model_fields_set:
        wire_labels = read_variable_wire(tx, current)["labels"]
        update["labels"] = {label: _label_target(target) for label, target in wire_labels.items()}
    return body.model_copy(update=update)


def replace_variable(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    body: VariableIn,
    actor: str,
    if_match: int | None = None,
    *,
    logfire_client: bool = False,
) -> VariableView:
    """Replace a variable's fields and labels (versions are kept: they are immutable).

    ``logfire_client``: the body comes from the Logfire SDK, which was served the Logfire-readable form of the
    variable; what it was not served is kept (see `logfire_compat.merge_logfire_overrides`) or the write is
    refused with 409, never dropped.
    """
    if body.name != name:
        raise InvalidError(
            f"the body names {body.name!r} but the URL names {name!r}; renaming is not supported "
            "(create the new name and list the old one in `aliases`)"
        )
    _validated_fields(body)
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, name, lock=True)
        _check_if_match(current, if_match)
        if logfire_client:
            body = _keep_unseen(tx, project_id, current, body)
        view, change = _replace(ctx, tx, project_id, current, body, actor)
    ctx.sink.applied(change)
    return view


MAX_BULK_VARIABLES = 1000


def _where(index: int, body: VariableIn) -> str:
    return f"variables[{index}] ({body.name!r})"


def _current_labels(tx: WriteTx, variable: Variable) -> dict[str, LabelTargetIn]:
    """A variable's labels as write targets (kept by a bulk upsert that sends no ``labels``)."""
    targets: dict[str, LabelTargetIn] = {}
    for label in tx.list_labels(variable.id):
        t = label.target
        if t.target_type == "version":
            targets[label.name] = LabelTargetIn(target_type="version", version=t.version)
        elif t.target_type == "label":
            targets[label.name] = LabelTargetIn(target_type="label", target_label=t.target_label)
        else:
            targets[label.name] = LabelTargetIn(target_type=t.target_type)
    return targets


def bulk_upsert(
    ctx: ServiceContext, project_id: int, bodies: list[BulkVariableIn], actor: str, *, logfire_client: bool = False
) -> list[tuple[VariableView, bool]]:
    """Create or replace many variables in one transaction: all of them change, or none does.

    Each item is a ``POST /v1/variables/`` body; a variable that exists is replaced as ``PUT`` would, except
    that an item sending no ``labels`` keeps the variable's labels (and no ``external`` keeps that flag). An
    item's ``revision`` (from the variable's ``ETag``) makes it fail with 412 when the variable changed since.
    Every variable gets its own audit entry and change event. Returns ``(view, created)`` in request order.
    """
    if len(bodies) > MAX_BULK_VARIABLES:
        raise InvalidError(f"{len(bodies)} variables in one request; send at most {MAX_BULK_VARIABLES} at a time")
    seen: dict[str, int] = {}
    for index, body in enumerate(bodies):
        if body.name in seen:
            raise InvalidError(
                f"{_where(index, body)}: {body.name!r} is also variables[{seen[body.name]}]; send each variable once"
            )
        seen[body.name] = index
        try:
            if "labels" in body.model_fields_set:  # without labels, an existing variable's are only known in the tx
                _validated_fields(body)
        except ServiceError as exc:
            raise type(exc)(f"{_where(index, body)}: {exc.message}", errors=exc.errors) from None
    results: list[tuple[VariableView, bool]] = []
    changes: list[Change] = []
    with ctx.storage.write() as tx:
        # Lock in name order, so two bulk writes naming the same variables in other orders cannot deadlock.
        existing = {name: tx.lock_variable(project_id, name) for name in sorted(seen)}
        for index, body in enumerate(bodies):
            try:
                current = existing[body.name]
                if current is None:
                    if body.revision is not None:
                        raise PreconditionFailedError(
                            f"variable {body.name!r} does not exist (any more), but revision {body.revision} was "
                            "expected; fetch the variables again"
                        )
                    view, change = _insert(ctx, tx, project_id, body, actor, check=False)
                else:
                    _check_if_match(current, body.revision)
                    if logfire_client:  # what a Logfire client was not served is kept (see replace_variable)
                        body = _keep_unseen(tx, project_id, current, body)
                    if "labels" not in body.model_fields_set:
                        body = body.model_copy(update={"labels": _current_labels(tx, current)})
                    view, change = _replace(ctx, tx, project_id, current, body, actor, check=False)
            except ServiceError as exc:
                raise type(exc)(f"{_where(index, body)}: {exc.message}", errors=exc.errors) from None
            except ReviewRequired as signal:
                if len(bodies) == 1:
                    raise  # becomes a change request (202)
                raise ConflictError(
                    f"{_where(index, body)}: this change needs review ({signal.reason}), so it cannot be part of a "
                    "bulk write: nothing was saved; send this variable on its own (it then becomes a change "
                    "request) and the others without it"
                ) from None
            results.append((view, current is None))
            changes.append(change)
        # references between the items are checked once every item is written
        for index, (view, _created) in enumerate(results):
            try:
                check_composition(tx, project_id, view.wire)
            except ServiceError as exc:
                raise type(exc)(f"{_where(index, bodies[index])}: {exc.message}", errors=exc.errors) from None
    for change in changes:
        ctx.sink.applied(change)
    return results


def delete_variable(ctx: ServiceContext, project_id: int, name: str, actor: str, if_match: int | None = None) -> None:
    """Delete a variable with its versions and labels (the audit history keeps its last state)."""
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, name, lock=True)
        _check_if_match(current, if_match)
        before = read_variable_wire(tx, current)
        for referenced in (name, *(current.fields.aliases or ())):
            check_not_referenced(tx, project_id, referenced, "delete")
        tx.delete_variable(current)
        audit.record(tx, project_id, actor, "delete", "variable", name, before, None)
        change = _announce(ctx, tx, project_id, "deleted", name)
    ctx.sink.applied(change)


def create_version(
    ctx: ServiceContext, project_id: int, name: str, body: VersionIn, actor: str, if_match: int | None = None
) -> tuple[Version, VariableView]:
    """Store a new immutable version (validated against the schema), optionally moving a label onto it."""
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, name, lock=True)
        _check_if_match(current, if_match)
        schema = effective_schema(tx, project_id, current.fields.json_schema, current.fields.type_name)
        check_value(body.serialized_value, schema, f"new version of {name!r}")
        before = read_variable_wire(tx, current)
        version = tx.create_version(current.id, body.serialized_value, actor)
        if body.label is not None:
            _check_label_name(body.label)
            tx.set_label(current.id, body.label, LabelTarget("version", version=version.version), actor)
        variable = tx.touch_variable(current)
        after = read_variable_wire(tx, variable)
        check_composition(tx, project_id, after)
        audit.record(tx, project_id, actor, "create_version", "variable", name, before, after)
        change = _announce(ctx, tx, project_id, "updated", name)
    ctx.sink.applied(change)
    return version, VariableView(after, variable.revision)


_LABEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _check_label_name(label: str) -> None:
    if label in RESERVED_LABELS:
        raise InvalidError(f"label name {label!r} is reserved; choose another name")
    if not _LABEL_NAME.match(label):
        raise InvalidError(
            f"label name {label!r} is invalid: use up to 64 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )


def move_label(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    label: str,
    target: LabelTargetIn,
    actor: str,
    if_match: int | None = None,
) -> VariableView:
    """Point one label somewhere else (recorded in the label's history)."""
    _check_label_name(label)
    with ctx.storage.write() as tx:
        current = _require(tx, project_id, name, lock=True)
        _check_if_match(current, if_match)
        schema = effective_schema(tx, project_id, current.fields.json_schema, current.fields.type_name)
        before = read_variable_wire(tx, current)
        numbers = _resolve_version_targets(tx, current, {label: target}, schema, actor)
        if target.target_type == "version":
            stored = LabelTarget("version", version=numbers[label])
        elif target.target_type == "label":
            stored = LabelTarget("label", target_label=target.target_label)
        else:
            stored = LabelTarget(target.target_type)
        tx.set_label(current.id, label, stored, actor)
        variable = tx.touch_variable(current)
        after = read_variable_wire(tx, variable)
        check_composition(tx, project_id, after)
        check_variable_config(after)
        audit.record(tx, project_id, actor, "move_label", "variable", name, before, after)
        change = _announce(ctx, tx, project_id, "updated", name)
    ctx.sink.applied(change)
    return VariableView(after, variable.revision)


def list_versions(ctx: ServiceContext, project_id: int, name: str) -> list[Version]:
    """Every version of a variable, oldest first."""
    with ctx.storage.read() as tx:
        return tx.list_versions(_require(tx, project_id, name).id)


def label_history(ctx: ServiceContext, project_id: int, name: str, label: str | None = None) -> list[LabelMove]:
    """Label moves of a variable, oldest first."""
    with ctx.storage.read() as tx:
        return tx.label_history(_require(tx, project_id, name).id, label)
