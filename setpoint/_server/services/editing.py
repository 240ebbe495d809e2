"""Editing a variable the way the management API and the web UI do: versions with descriptions, restore,
label deletion, targeting (rollout + ordered overrides), description and aliases.

Every function is one write transaction that locks the variable row, refuses a stale ``if_match`` revision
(412, never a silent overwrite), validates what the change touches (the variable and its references:
`check_variable_write`, whatever the project's size) before committing, records the change in the audit
history and announces it (snapshot update, SSE).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn

from setpoint._server.services import audit
from setpoint._server.services.change_requests.review import RequestOpened, ReviewRequired
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import InvalidError, NotFoundError, PreconditionFailedError
from setpoint._server.services.templates import check_composition
from setpoint._server.services.validation import check_value, check_variable_config, check_variable_write
from setpoint._server.services.variables import VariableView, effective_schema
from setpoint._server.services.wire import read_variable_wire
from setpoint._server.storage import StaleRevisionError, WriteTx
from setpoint._server.storage.records import LabelTarget, Variable, VariableFields, Version
from setpoint.config import RESERVED_LABELS, VariableConfig

Mutation = Callable[[WriteTx, Variable], Variable]


def stale_message(name: str, current: int, expected: int) -> str:
    """The message of a refused stale edit."""
    return (
        f"variable {name!r} was changed by someone else since you opened it (revision {expected} -> {current}); "
        "your edit was not saved: reload to see their change, then apply yours again"
    )


def require(tx: WriteTx, project_id: int, name: str) -> Variable:
    """The variable locked for writing; 404 when missing."""
    variable = tx.lock_variable(project_id, name)
    if variable is None:
        raise NotFoundError(f"variable {name!r} does not exist in this project")
    return variable


def check_revision(variable: Variable, if_match: int | None) -> None:
    """412 when the caller's revision is not the current one."""
    if if_match is not None and if_match != variable.revision:
        raise PreconditionFailedError(stale_message(variable.name, variable.revision, if_match))


def apply_change(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    actor: str,
    if_match: int | None,
    action: str,
    mutate: Mutation,
) -> VariableView:
    """Lock, check the revision, ``mutate``, validate, audit and announce one change of a variable."""
    with ctx.storage.write() as tx:
        current = require(tx, project_id, name)
        check_revision(current, if_match)
        before = read_variable_wire(tx, current)
        try:
            variable = mutate(tx, current)
        except StaleRevisionError:
            raise PreconditionFailedError(stale_message(name, current.revision + 1, current.revision)) from None
        after = read_variable_wire(tx, variable)
        check_variable_write(tx, project_id, after)
        check_composition(tx, project_id, after)
        audit.record(tx, project_id, actor, action, "variable", name, before, after)
        change = Change(project_id=project_id, entity="variable", event="updated", name=name)
        ctx.sink.record(tx, change)
    ctx.sink.applied(change)
    return VariableView(after, variable.revision)


def _new_version(
    tx: WriteTx,
    project_id: int,
    variable: Variable,
    value: str,
    description: str | None,
    label: str | None,
    actor: str,
) -> Version:
    schema = effective_schema(tx, project_id, variable.fields.json_schema, variable.fields.type_name)
    check_value(value, schema, f"new version of {variable.name!r}")
    version = tx.create_version(variable.id, value, actor, description or None)
    if label:
        check_label_name(label)
        tx.set_label(variable.id, label, LabelTarget("version", version=version.version), actor)
    return version


def create_version(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    serialized_value: str,
    actor: str,
    *,
    description: str | None = None,
    label: str | None = None,
    if_match: int | None = None,
) -> tuple[Version, VariableView]:
    """Store a new immutable version (validated against the variable's schema) with an optional description,
    optionally moving ``label`` onto it."""
    created: list[Version] = []

    def mutate(tx: WriteTx, variable: Variable) -> Variable:
        created.append(_new_version(tx, project_id, variable, serialized_value, description, label, actor))
        return tx.touch_variable(variable)

    try:
        view = apply_change(ctx, project_id, name, actor, if_match, "create_version", mutate)
    except ReviewRequired as signal:
        if not label:
            raise
        _version_then_request(ctx, project_id, name, actor, signal, label, if_match, serialized_value, description)
    return created[0], view


def restore_version(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    version: int,
    actor: str,
    *,
    label: str | None = None,
    if_match: int | None = None,
) -> tuple[Version, VariableView]:
    """Restore an earlier version: a new version with its value (versions stay immutable), audited as a
    restore; ``label`` (if given) is moved onto the new version."""
    created: list[Version] = []

    def mutate(tx: WriteTx, variable: Variable) -> Variable:
        old = tx.get_version(variable.id, version)
        if old is None:
            raise NotFoundError(f"version {version} of {name!r} does not exist")
        note = f"Restored from version {version}"
        created.append(_new_version(tx, project_id, variable, old.serialized_value, note, label, actor))
        return tx.touch_variable(variable)

    try:
        view = apply_change(ctx, project_id, name, actor, if_match, "restore_version", mutate)
    except ReviewRequired as signal:
        if not label:
            raise
        with ctx.storage.read() as tx:
            variable = tx.get_variable(project_id, name)
            old = None if variable is None else tx.get_version(variable.id, version)
        if old is None:
            raise
        note = f"Restored from version {version}"
        _version_then_request(ctx, project_id, name, actor, signal, label, if_match, old.serialized_value, note)
    return created[0], view


def _version_then_request(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    actor: str,
    signal: ReviewRequired,
    label: str,
    if_match: int | None,
    value: str,
    description: str | None,
) -> NoReturn:
    """A new version whose label move needs review: the version is created now (versions are immutable and no
    label serves it yet), the label move becomes a change request; raises :class:`RequestOpened`."""
    from setpoint._server.services.change_requests import service

    version, _view = create_version(ctx, project_id, name, value, actor, description=description, if_match=if_match)
    after = {"version": version.version, "serialized_value": value}
    signal.diff = {"labels": {label: {"before": signal.diff["labels"][label]["before"], "after": after}}}
    opened = service.open_from(ctx, signal)
    moving = opened.message.replace("Your change", f"Moving label {label!r} onto it")
    raise RequestOpened(opened.request, f"Version {version.version} was created. {moving}")


def check_label_name(label: str) -> None:
    """422 for a reserved or malformed label name."""
    if label in RESERVED_LABELS:
        raise InvalidError(f"label name {label!r} is reserved; choose another name")
    ok = 0 < len(label) <= 64 and label[0] not in ".-" and all(c.isalnum() or c in "_.-" for c in label)
    if not ok or not label.isascii():
        raise InvalidError(
            f"label name {label!r} is invalid: use up to 64 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )


def set_label(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    label: str,
    target: LabelTarget,
    actor: str,
    *,
    if_match: int | None = None,
) -> VariableView:
    """Create or move a label to a version, ``latest``, ``code_default`` or another label (with history)."""
    check_label_name(label)

    def mutate(tx: WriteTx, variable: Variable) -> Variable:
        if target.target_type == "version" and (
            target.version is None or tx.get_version(variable.id, target.version) is None
        ):
            raise InvalidError(f"version {target.version} of {name!r} does not exist")
        if target.target_type == "label" and target.target_label == label:
            raise InvalidError(f"label {label!r} cannot point at itself")
        tx.set_label(variable.id, label, target, actor)
        return tx.touch_variable(variable)

    return apply_change(ctx, project_id, name, actor, if_match, "move_label", mutate)


def delete_label(
    ctx: ServiceContext, project_id: int, name: str, label: str, actor: str, *, if_match: int | None = None
) -> VariableView:
    """Remove a label (recorded in its history); refused while a rollout, an override or a label uses it."""

    def mutate(tx: WriteTx, variable: Variable) -> Variable:
        referring = [lb.name for lb in tx.list_labels(variable.id) if lb.target.target_label == label]
        users = label_users(variable, label, referring)
        if users:
            raise InvalidError(f"label {label!r} is still used by {', '.join(users)}; change those first")
        if not tx.delete_label(variable.id, label, actor):
            raise NotFoundError(f"label {label!r} of {name!r} does not exist")
        return tx.touch_variable(variable)

    return apply_change(ctx, project_id, name, actor, if_match, "delete_label", mutate)


def label_users(variable: Variable, label: str, referring_labels: list[str]) -> list[str]:
    """What still points at ``label``: the default rollout, override rules (1-based), other labels."""
    fields = variable.fields
    users: list[str] = []
    if label in fields.rollout.get("labels", {}):
        users.append("the default rollout")
    for index, override in enumerate(fields.overrides):
        if label in override.get("rollout", {}).get("labels", {}):
            users.append(f"override rule #{index + 1}")
    users.extend(f"label {lb!r}" for lb in referring_labels)
    return users


def _weights_message(where: str, labels: dict[str, Any]) -> str | None:
    total = 0.0
    for label, weight in labels.items():
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight):
            return f"{where}: the weight of {label!r} must be a number"
        if weight < 0 or weight > 1:
            return f"{where}: the weight of {label!r} is {weight * 100:.12g}%; each weight must be between 0% and 100%"
        total += weight
    if total > 1 + 1e-9:
        return (
            f"{where}: the weights add up to {total * 100:.12g}%, more than 100%; lower them so that they add up "
            "to 100% or less (the rest is served the code default)"
        )
    return None


def check_targeting(rollout: dict[str, Any], overrides: list[dict[str, Any]]) -> None:
    """Clear messages for the most common mistakes (weights above 100%) before the model's own checks."""
    problems = [_weights_message("default rollout", dict(rollout.get("labels") or {}))]
    for index, override in enumerate(overrides):
        labels = dict((override.get("rollout") or {}).get("labels") or {})
        problems.append(_weights_message(f"override rule #{index + 1}", labels))
        if not override.get("conditions"):
            problems.append(f"override rule #{index + 1} has no conditions; add at least one")
    messages = [p for p in problems if p]
    if messages:
        raise InvalidError("; ".join(messages), errors=[{"loc": "targeting", "msg": m} for m in messages])


def set_targeting(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    rollout: dict[str, Any],
    overrides: list[dict[str, Any]],
    actor: str,
    *,
    if_match: int | None = None,
) -> VariableView:
    """Replace the default rollout and the ordered override rules of a variable."""
    check_targeting(rollout, overrides)

    def mutate(tx: WriteTx, variable: Variable) -> Variable:
        return write_targeting(tx, variable, rollout, overrides)

    return apply_change(ctx, project_id, name, actor, if_match, "set_targeting", mutate)


def normal_targeting(
    tx: WriteTx, variable: Variable, rollout: dict[str, Any], overrides: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``rollout`` and ``overrides`` validated with the rest of ``variable``, in the model's normal form (so
    ``1`` and ``1.0`` are one weight): what a write stores."""
    probe = {**read_variable_wire(tx, variable), "rollout": rollout, "overrides": overrides}
    config = check_variable_config(probe)
    return config.rollout.model_dump(mode="json"), [o.model_dump(mode="json") for o in config.overrides]


def write_targeting(
    tx: WriteTx, variable: Variable, rollout: dict[str, Any], overrides: list[dict[str, Any]]
) -> Variable:
    """Store ``rollout`` and ``overrides`` on the locked ``variable`` (`normal_targeting`)."""
    stored_rollout, stored_overrides = normal_targeting(tx, variable, rollout, overrides)
    return tx.update_variable(variable, _with(variable.fields, rollout=stored_rollout, overrides=stored_overrides))


def _with(fields: VariableFields, **changes: Any) -> VariableFields:
    data = {k: getattr(fields, k) for k in VariableFields.__dataclass_fields__}
    data.update(changes)
    return VariableFields(**data)


def update_details(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    actor: str,
    *,
    description: str | None = None,
    aliases: list[str] | None = None,
    set_description: bool = False,
    set_aliases: bool = False,
    external: bool | None = None,
    if_match: int | None = None,
) -> VariableView:
    """Change a variable's description, aliases (other names that resolve to it) and/or ``external`` flag
    (None: unchanged)."""

    def mutate(tx: WriteTx, variable: Variable) -> Variable:
        changes: dict[str, Any] = {}
        if set_description:
            changes["description"] = description or None
        if set_aliases:
            cleaned = sorted({a.strip() for a in aliases or [] if a.strip()})
            if name in cleaned:
                raise InvalidError(f"{name!r} cannot be an alias of itself")
            VariableConfig.model_validate({"name": name, "aliases": cleaned or None})
            changes["aliases"] = cleaned or None
        if external is not None:
            changes["external"] = external
        return tx.update_variable(variable, _with(variable.fields, **changes))

    try:
        return apply_change(ctx, project_id, name, actor, if_match, "update_details", mutate)
    except ValueError as exc:  # pydantic: a malformed alias
        raise InvalidError(f"invalid alias: {exc}") from None
