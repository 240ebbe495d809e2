"""Management endpoints for editing variables: versions (with descriptions), restore, diff, validate, label
deletion, targeting, details, rename, history and server-side resolve. Each is a thin layer over the service
functions that the web UI calls too. Writes take ``If-Match: "<revision>"`` and answer 412 when stale."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from setpoint._server.api.deps import IfMatch, VersionNumber, parse_if_match, reader, server_state, writer
from setpoint._server.auth import Principal
from setpoint._server.services import catalog, editing, lifecycle, simulate
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.input_limits import DB_INT_MAX
from setpoint._server.services.variables import VariableView
from setpoint._server.storage.records import AuditEntry, LabelMove

router = APIRouter(prefix="/v1", tags=["management"])

Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]


class NewVersion(BaseModel):
    """A new version: ``serialized_value`` (JSON text) or ``value`` (any JSON), a description, a label to move."""

    model_config = ConfigDict(extra="forbid")

    serialized_value: str | None = None
    value: Any = None
    description: str | None = Field(default=None, max_length=2000)
    label: str | None = None

    def serialized(self) -> str:
        """The value as JSON text."""
        if self.serialized_value is not None:
            return self.serialized_value
        if "value" not in self.model_fields_set:
            raise InvalidError("send `serialized_value` (JSON text) or `value` (any JSON)")
        return json.dumps(self.value, ensure_ascii=False)


class RestoreIn(BaseModel):
    """Restore options: the label to move onto the restored version, if any."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None


class ValueIn(BaseModel):
    """A value to validate without saving."""

    model_config = ConfigDict(extra="forbid")

    serialized_value: str


class TargetingIn(BaseModel):
    """The default rollout and the ordered override rules."""

    model_config = ConfigDict(extra="forbid")

    rollout: dict[str, Any] = Field(default_factory=lambda: {"labels": {}})
    overrides: list[dict[str, Any]] = Field(default_factory=list)


class DetailsIn(BaseModel):
    """Fields to change: any of ``description``, ``aliases`` and ``external``."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    aliases: list[str] | None = None
    external: bool | None = None
    """Whether ``read_external`` keys may evaluate the variable through OFREP."""


class RenameIn(BaseModel):
    """A rename: the new name, and whether the old one stays an alias (default yes)."""

    model_config = ConfigDict(extra="forbid")

    new_name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=128)
    keep_alias: bool = True


class ResolveIn(BaseModel):
    """A resolution request: targeting key and attributes; ``variables`` limits it to some names."""

    model_config = ConfigDict(extra="forbid")

    targeting_key: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    variables: list[str] | None = None
    label: str | None = None
    inputs: dict[str, Any] | None = None
    """Template inputs: when given, the ``{{fields}}`` of template variables are rendered with them."""


def _json(data: Any, view: VariableView | None = None, status_code: int = 200) -> Response:
    headers = {} if view is None else {"ETag": f'"{view.revision}"'}
    return Response(json.dumps(data), status_code=status_code, media_type="application/json", headers=headers)


def version_json(info: catalog.VersionInfo) -> dict[str, Any]:
    """A version with its author, time, description and labels."""
    return {
        "version": info.version,
        "serialized_value": info.serialized_value,
        "description": info.description,
        "labels": info.labels,
        "created_by": info.created_by,
        "created_at": info.created_at.isoformat(),
    }


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry, with a one-line summary."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "summary": catalog.describe_change(entry),
        "before": entry.before,
        "after": entry.after,
    }


def move_json(move: LabelMove) -> dict[str, Any]:
    """A label move (target None: removed)."""
    target = None if move.target is None else move.target.__dict__
    return {"label": move.label, "target": target, "moved_by": move.moved_by, "moved_at": move.moved_at.isoformat()}


@router.get("/variables/{name}/versions/", summary="Versions with authors, times, descriptions and labels")
def list_versions(request: Request, name: str, caller: Reader) -> list[dict[str, Any]]:
    """Every version of a variable, newest first."""
    infos = catalog.list_version_info(server_state(request).ctx, caller.project_id, name)
    return [version_json(i) for i in infos]


@router.post("/variables/{name}/versions/", status_code=201, summary="Create a version")
def create_version(request: Request, name: str, body: NewVersion, caller: Writer, if_match: IfMatch = None) -> Response:
    """A new immutable version, validated against the variable's JSON schema; optionally moves ``label``."""
    ctx = server_state(request).ctx
    version, view = editing.create_version(
        ctx,
        caller.project_id,
        name,
        body.serialized(),
        caller.actor,
        description=body.description,
        label=body.label,
        if_match=parse_if_match(if_match),
    )
    data = {
        "version": version.version,
        "serialized_value": version.serialized_value,
        "description": body.description,
        "created_by": version.created_by,
        "created_at": version.created_at.isoformat(),
    }
    return _json(data, view, 201)


@router.post("/variables/{name}/versions/{version}/restore/", status_code=201, summary="Restore a version")
def restore_version(
    request: Request,
    name: str,
    version: VersionNumber,
    caller: Writer,
    body: RestoreIn | None = None,
    if_match: IfMatch = None,
) -> Response:
    """A new version with the value of ``version`` (audited as a restore); optionally moves a label onto it."""
    ctx = server_state(request).ctx
    label = None if body is None else body.label
    new, view = editing.restore_version(
        ctx, caller.project_id, name, version, caller.actor, label=label, if_match=parse_if_match(if_match)
    )
    data = {"version": new.version, "restored_from": version, "serialized_value": new.serialized_value}
    return _json(data, view, 201)


@router.get("/variables/{name}/diff/", summary="Diff two versions")
def diff(
    request: Request,
    name: str,
    caller: Reader,
    old: Annotated[int, Query(alias="from", ge=1, le=DB_INT_MAX)],
    new: Annotated[int, Query(alias="to", ge=1, le=DB_INT_MAX)],
) -> dict[str, Any]:
    """A unified diff of the pretty-printed values of two versions."""
    lines = catalog.diff_versions(server_state(request).ctx, caller.project_id, name, old, new)
    return {"from": old, "to": new, "identical": not lines, "diff": "\n".join(lines)}


@router.post("/variables/{name}/validate/", summary="Validate a value without saving it")
def validate(request: Request, name: str, body: ValueIn, caller: Reader) -> dict[str, Any]:
    """Whether the value would be accepted as a new version, and every problem if not."""
    errors = catalog.validate_value(server_state(request).ctx, caller.project_id, name, body.serialized_value)
    return {"valid": not errors, "errors": errors}


@router.delete("/variables/{name}/labels/{label}/", summary="Delete a label")
def delete_label(request: Request, name: str, label: str, caller: Writer, if_match: IfMatch = None) -> Response:
    """Remove a label (kept in its history); refused (422) while a rollout, override or label uses it."""
    ctx = server_state(request).ctx
    view = editing.delete_label(ctx, caller.project_id, name, label, caller.actor, if_match=parse_if_match(if_match))
    return _json(view.wire, view)


@router.get("/variables/{name}/targeting/", summary="The rollout and override rules")
def get_targeting(request: Request, name: str, caller: Reader) -> Response:
    """The default rollout and ordered overrides; the ETag is the revision to send back as If-Match."""
    variable = catalog.get_record(server_state(request).ctx, caller.project_id, name)
    data = {"rollout": variable.fields.rollout, "overrides": variable.fields.overrides}
    return Response(json.dumps(data), media_type="application/json", headers={"ETag": f'"{variable.revision}"'})


@router.put("/variables/{name}/targeting/", summary="Set the rollout and override rules")
def put_targeting(request: Request, name: str, body: TargetingIn, caller: Writer, if_match: IfMatch = None) -> Response:
    """Replace the default rollout and the ordered overrides (weights must add up to at most 1)."""
    ctx = server_state(request).ctx
    view = editing.set_targeting(
        ctx, caller.project_id, name, body.rollout, body.overrides, caller.actor, if_match=parse_if_match(if_match)
    )
    return _json(view.wire, view)


@router.patch("/variables/{name}/", summary="Change a variable's description, aliases or external flag")
def patch_variable(request: Request, name: str, body: DetailsIn, caller: Writer, if_match: IfMatch = None) -> Response:
    """Only the fields sent change."""
    ctx = server_state(request).ctx
    sent = body.model_fields_set
    view = editing.update_details(
        ctx,
        caller.project_id,
        name,
        caller.actor,
        description=body.description,
        aliases=body.aliases,
        set_description="description" in sent,
        set_aliases="aliases" in sent,
        external=body.external,
        if_match=parse_if_match(if_match),
    )
    return _json(view.wire, view)


@router.post("/variables/{name}/rename/", summary="Rename a variable")
def rename(request: Request, name: str, body: RenameIn, caller: Writer, if_match: IfMatch = None) -> Response:
    """Rename, keeping versions, labels and targeting; the old name stays an alias unless ``keep_alias`` is false."""
    ctx = server_state(request).ctx
    view = lifecycle.rename_variable(
        ctx,
        caller.project_id,
        name,
        body.new_name,
        caller.actor,
        keep_alias=body.keep_alias,
        if_match=parse_if_match(if_match),
    )
    return _json(view.wire, view)


@router.get("/variables/{name}/history/", summary="Every change of a variable with who and when")
def history(request: Request, name: str, caller: Reader) -> dict[str, Any]:
    """Audit entries and label moves, newest first."""
    found = catalog.variable_history(server_state(request).ctx, caller.project_id, name)
    return {"changes": [entry_json(e) for e in found.entries], "label_moves": [move_json(m) for m in found.moves]}


@router.post("/resolve/", summary="Resolve variables server-side, with an explanation")
async def resolve(request: Request, body: ResolveIn, caller: Reader) -> dict[str, Any]:
    """What each variable (or the ones named) serves for this targeting key and these attributes, and why;
    the same evaluation core and bucketing as the SDK."""
    state = server_state(request)
    snapshot = state.snapshots.cached(caller.project_id)
    if snapshot is None:
        snapshot = await run_in_threadpool(state.snapshots.get, caller.project_id)
    # Off the event loop: compiling what changed, and evaluation (linear, RE2, but attributes can be large).
    results = await run_in_threadpool(
        lambda: simulate.resolve(
            snapshot.compiled(), body.targeting_key, body.attributes, body.variables, body.label, body.inputs
        )
    )
    return {"targeting_key": body.targeting_key, "results": [r.to_json() for r in results]}
