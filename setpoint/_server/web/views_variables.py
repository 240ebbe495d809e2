"""The variables list, creating a variable, and a variable's Values tab (versions, labels, diff, scheduled label
moves)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from setpoint._server.api.deps import server_state
from setpoint._server.services import catalog, editing, input_limits, lifecycle
from setpoint._server.services import templates as template_service
from setpoint._server.services import types as type_service
from setpoint._server.services.errors import InvalidError, NotFoundError, ServiceError
from setpoint._server.services.input_limits import DB_INT_MAX, check_db_int
from setpoint._server.services.schedules import service as schedules
from setpoint._server.services.usage import report as usage_report
from setpoint._server.storage.records import LabelTarget
from setpoint._server.storage.schedules import PENDING
from setpoint._server.web import session as sessions
from setpoint._server.web import views_schedules
from setpoint._server.web.messages import for_ui
from setpoint._server.web.render import Page, field, page, revision

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]


@router.get("/p/{project}/variables")
async def variables(current: Current, q: str = "") -> Response:
    """Every variable: type, description, what it serves by default, label and version counts."""
    rows = await run_in_threadpool(catalog.list_summaries, current.ctx, current.project.id, q)
    stale_days = server_state(current.request).settings.stale_days
    status = await run_in_threadpool(usage_report.list_status, current.ctx, current.project.id, stale_days)
    return current.render(
        "variables.html",
        rows=rows,
        q=q,
        nav="variables",
        usage=status.usage,
        stale=status.stale,
        stale_count=len(status.stale),
        in_code=status.in_code,
    )


def _new_form(current: Page, values: dict[str, str], error: str = "", status_code: int = 200) -> Response:
    types = type_service.list_types(current.ctx, current.project.id)
    return current.render("variable_new.html", status_code, types=types, values=values, error=error, nav="variables")


@router.get("/p/{project}/variables/new")
async def new_variable(current: Current) -> Response:
    """The create-variable form."""
    return await run_in_threadpool(_new_form, current, {"kind": "json"})


@router.post("/p/{project}/variables/new")
async def create_variable(current: Current) -> Response:
    """Create the variable and open its Values tab."""
    form = await current.form()
    fields = ("name", "description", "kind", "json_schema", "external", "template", "inputs_schema")
    values = {k: field(form, k) for k in fields}
    kind = values["kind"]
    type_name = kind.removeprefix("type:") if kind.startswith("type:") else None
    try:
        schema = lifecycle.parse_schema(values["json_schema"]) if kind == "json" else None
        inputs_schema = None
        if values["template"]:
            inputs_schema = lifecycle.parse_schema(values["inputs_schema"], "the template inputs schema")
            if inputs_schema is None:
                raise InvalidError(
                    'a template variable needs an inputs schema, e.g. {"type": "object", "properties": '
                    '{"user_name": {"type": "string"}}}'
                )
        await run_in_threadpool(
            lambda: lifecycle.create_variable(
                current.ctx,
                current.project.id,
                values["name"].strip(),
                current.session.actor,
                kind=kind,
                description=values["description"].strip(),
                json_schema=schema,
                type_name=type_name,
                external=values["external"] == "yes",
                template_inputs_schema=inputs_schema,
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_new_form, current, values, exc.message, exc.status_code)
    return current.redirect(f"/variables/{values['name'].strip()}", "Variable created. Add its first version below.")


def _values_page(
    current: Page, name: str, diff_from: int | None, diff_to: int | None, error: str = "", **extra: Any
) -> Response:
    record = catalog.get_record(current.ctx, current.project.id, name)
    versions = catalog.list_version_info(current.ctx, current.project.id, name)
    labels = catalog.list_labels(current.ctx, current.project.id, name)
    diff_lines: list[str] | None = None
    if diff_from and diff_to:
        try:
            diff_lines = catalog.diff_versions(current.ctx, current.project.id, name, diff_from, diff_to)
        except ServiceError as exc:
            error = error or exc.message
    kind = catalog.value_kind(record.fields.json_schema, record.fields.type_name)
    with current.ctx.storage.read() as tx:
        used_by = template_service.used_by(tx, current.project.id, name)
    inputs_schema = record.fields.template_inputs_schema
    draft = extra.pop("draft", None)
    if draft is None:
        source = versions[0].serialized_value if versions else record.fields.example
        draft = _editable(source, kind)
        if not draft and kind == "json" and isinstance(record.fields.json_schema, dict):
            draft = json.dumps(_skeleton(record.fields.json_schema), indent=2, ensure_ascii=False)
    return current.render(
        "variable_values.html",
        extra.pop("status_code", 200),
        variable=record,
        versions=versions,
        labels=labels,
        kind=kind,
        draft=draft,
        diff_lines=diff_lines,
        diff_from=diff_from,
        diff_to=diff_to,
        error=error,
        tab="values",
        nav="variables",
        used_by=used_by,
        inputs_schema=json.dumps(inputs_schema, indent=2) if inputs_schema is not None else None,
        sample_inputs=json.dumps(_sample_inputs(inputs_schema), indent=2) if inputs_schema is not None else "",
        pending_moves=[
            (s, schedules.describe(s))
            for s in schedules.list_for(current.ctx, current.project.id, states=(PENDING,), variable=name)
            if s.kind == "move_label"
        ],
        **extra,
    )


def _sample_inputs(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Example inputs for the preview: each declared property with a placeholder of its type."""
    samples: dict[str, Any] = {}
    for prop, spec in ((schema or {}).get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        samples[prop] = {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(
            str(kind), f"<{prop}>"
        )
    return samples


def _preview(current: Page, name: str, text: str, inputs_text: str) -> dict[str, Any]:
    record = catalog.get_record(current.ctx, current.project.id, name)
    kind = catalog.value_kind(record.fields.json_schema, record.fields.type_name)
    inputs: dict[str, Any] | None = None
    if inputs_text.strip():
        try:
            parsed = input_limits.loads(inputs_text, "the sample inputs")
        except ServiceError as exc:
            return {"value": None, "error": exc.message, "composed_from": []}
        except ValueError as exc:
            return {"value": None, "error": f"the sample inputs are not valid JSON: {exc}", "composed_from": []}
        if not isinstance(parsed, dict):
            return {"value": None, "error": "the sample inputs must be a JSON object", "composed_from": []}
        inputs = parsed
    snapshot = server_state(current.request).snapshots.get(current.project.id)
    compiled = snapshot.compiled()
    return template_service.preview(
        compiled, name, serialize_input(text, kind), inputs, record.fields.template_inputs_schema
    )


@router.post("/p/{project}/variables/{name}/preview")
async def preview(current: Current, name: str) -> Response:
    """The editor's preview: the draft value with its @{references}@ expanded against what is served now and
    its {{fields}} rendered with the sample inputs (JSON in, JSON out; CSRF token in ``X-CSRF-Token``)."""
    sessions.check_csrf(current.session, current.request.headers.get("x-csrf-token"))
    body = await current.request.json()
    if not isinstance(body, dict):
        return JSONResponse({"error": "send a JSON object"}, status_code=400)
    result = await run_in_threadpool(_preview, current, name, str(body.get("value", "")), str(body.get("inputs", "")))
    return JSONResponse(result)


def _skeleton(schema: dict[str, Any], depth: int = 0) -> Any:
    """A starting value shaped like ``schema`` (defaults where it has them), for a JSON variable that has no
    version and no example yet: the user fills it in rather than typing the structure."""
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    properties = schema.get("properties")
    if (kind == "object" or isinstance(properties, dict)) and depth < 5:
        if not isinstance(properties, dict):
            return {}
        return {k: _skeleton(v, depth + 1) if isinstance(v, dict) else None for k, v in properties.items()}
    return {"string": "", "integer": 0, "number": 0, "boolean": False, "array": []}.get(str(kind))


def _editable(serialized: str | None, kind: str) -> str:
    if serialized is None:
        return ""
    try:
        value = json.loads(serialized)
    except ValueError:
        return serialized
    if kind == "text" and isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def serialize_input(text: str, kind: str) -> str:
    """What the value box holds, as JSON text: text variables take plain text, the others JSON."""
    if kind == "text":
        return json.dumps(text, ensure_ascii=False)
    return text.strip()


@router.get("/p/{project}/variables/{name}")
async def values_tab(current: Current, name: str, diff_from: int | None = None, diff_to: int | None = None) -> Response:
    """Versions with their labels, the new-version editor, label moves and the diff of two versions."""
    return await run_in_threadpool(_values_page, current, name, diff_from, diff_to)


@router.post("/p/{project}/variables/{name}/versions")
async def create_version(current: Current, name: str) -> Response:
    """Save the editor's value as a new version (refused with the schema errors, or when stale)."""
    form = await current.form()
    record = await run_in_threadpool(catalog.get_record, current.ctx, current.project.id, name)
    kind = catalog.value_kind(record.fields.json_schema, record.fields.type_name)
    text = field(form, "value")
    label = field(form, "label").strip() or field(form, "new_label").strip() or None
    try:
        version, _ = await run_in_threadpool(
            lambda: editing.create_version(
                current.ctx,
                current.project.id,
                name,
                serialize_input(text, kind),
                current.session.actor,
                description=field(form, "description").strip() or None,
                label=label,
                if_match=revision(form),
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(
            _values_page,
            current,
            name,
            None,
            None,
            exc.message,
            draft=text,
            status_code=_ui_status(exc),
            errors=exc.errors,
        )
    moved = f" and moved label {label!r} onto it" if label else ""
    return current.redirect(f"/variables/{name}", f"Saved version {version.version}{moved}.")


def _ui_status(exc: ServiceError) -> int:
    return 409 if exc.status_code == 412 else exc.status_code


@router.post("/p/{project}/variables/{name}/validate")
async def validate(current: Current, name: str) -> Response:
    """Inline validation for the editor (JSON in, JSON out; CSRF token in ``X-CSRF-Token``)."""
    sessions.check_csrf(current.session, current.request.headers.get("x-csrf-token"))
    body = await current.request.json()
    record = await run_in_threadpool(catalog.get_record, current.ctx, current.project.id, name)
    kind = catalog.value_kind(record.fields.json_schema, record.fields.type_name)
    text = str(body.get("value", "")) if isinstance(body, dict) else ""
    errors = await run_in_threadpool(
        catalog.validate_value, current.ctx, current.project.id, name, serialize_input(text, kind)
    )
    shown = [{**e, "msg": for_ui(str(e.get("msg", "")))} for e in errors]  # the UI's words, as on save
    return JSONResponse({"valid": not errors, "errors": shown})


def _label_move(form: FormData) -> tuple[str, LabelTarget]:
    """The label and target of the Values tab's "Move or add a label" form (422 for a version that is not a number
    in range)."""
    label = field(form, "label").strip() or field(form, "new_label").strip()
    raw = field(form, "target")
    if raw.startswith("version:"):
        number = raw.removeprefix("version:")
        if not (number.isdigit() and number.isascii()):
            raise InvalidError(f"choose a version to point the label at ({number!r} is not a version number)")
        if len(number) > len(str(DB_INT_MAX)):  # (int() refuses thousands of digits)
            raise InvalidError(f"version must be between 1 and {DB_INT_MAX} (got a {len(number)}-digit number)")
        check_db_int(int(number), "version")
        return label, LabelTarget("version", version=int(number))
    if raw.startswith("label:"):
        return label, LabelTarget("label", target_label=raw.removeprefix("label:"))
    return label, LabelTarget("code_default" if raw == "code_default" else "latest")


@router.post("/p/{project}/variables/{name}/labels")
async def move_label(current: Current, name: str) -> Response:
    """Create or move a label to a version, latest, code default or another label."""
    form = await current.form()
    try:
        label, target = _label_move(form)
        await run_in_threadpool(
            lambda: editing.set_label(
                current.ctx, current.project.id, name, label, target, current.session.actor, if_match=revision(form)
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(
            _values_page, current, name, None, None, exc.message, status_code=_ui_status(exc)
        )
    return current.redirect(f"/variables/{name}", f"Label {label!r} now points at {_target_words(target)}.")


@router.post("/p/{project}/variables/{name}/labels/schedule")
async def schedule_label_move(current: Current, name: str) -> Response:
    """Schedule the label move of the "Move or add a label" form for the chosen time instead of making it now
    (checked now as it would be made: unknown version, protected label, review needed are refused at once)."""
    form = await current.form()
    try:
        label, target = _label_move(form)
        when = views_schedules.parse_when(form, "schedule_at")
        payload = {"label": label, "target": _target_payload(target)}
        created = await run_in_threadpool(
            schedules.create, current.ctx, current.project.id, name, "move_label", payload, when, current.session.actor
        )
    except ServiceError as exc:
        return await run_in_threadpool(
            _values_page, current, name, None, None, exc.message, status_code=exc.status_code
        )
    views_schedules.wake(current)
    return current.redirect(
        f"/variables/{name}",
        f"Move of label {label!r} to {_target_words(target)} scheduled (#{created.id}); nothing changed yet.",
    )


@router.post("/p/{project}/variables/{name}/scheduled/{schedule_id}/cancel")
async def cancel_scheduled(current: Current, name: str, schedule_id: int) -> Response:
    """Cancel a pending scheduled change of this variable from its Values tab (or its Targeting tab, which
    sends ``back=targeting`` to return there)."""
    form = await current.form()
    back = f"/variables/{name}/targeting" if form.get("back") == "targeting" else f"/variables/{name}"
    try:
        check_db_int(schedule_id, "schedule")
        found = await run_in_threadpool(schedules.get, current.ctx, current.project.id, schedule_id)
        if found.variable != name:
            raise NotFoundError(f"schedule {schedule_id} is not a scheduled change of {name}")
        await run_in_threadpool(schedules.cancel, current.ctx, current.project.id, schedule_id, current.session.actor)
    except ServiceError as exc:
        return await run_in_threadpool(
            _values_page, current, name, None, None, exc.message, status_code=exc.status_code
        )
    return current.redirect(back, f"Scheduled change #{schedule_id} cancelled.")


def _target_payload(target: LabelTarget) -> dict[str, Any]:
    """A label target as a ``move_label`` schedule's payload holds it."""
    payload: dict[str, Any] = {"target_type": target.target_type}
    if target.version is not None:
        payload["version"] = target.version
    if target.target_label is not None:
        payload["target_label"] = target.target_label
    return payload


def _target_words(target: LabelTarget) -> str:
    if target.target_type == "version":
        return f"version {target.version}"
    if target.target_type == "label":
        return f"label {target.target_label!r}"
    return "the latest version" if target.target_type == "latest" else "the code default"


@router.post("/p/{project}/variables/{name}/labels/{label}/delete")
async def delete_label(current: Current, name: str, label: str) -> Response:
    """Delete a label (refused while targeting uses it)."""
    form = await current.form()
    try:
        await run_in_threadpool(
            lambda: editing.delete_label(
                current.ctx, current.project.id, name, label, current.session.actor, if_match=revision(form)
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(
            _values_page, current, name, None, None, exc.message, status_code=_ui_status(exc)
        )
    return current.redirect(f"/variables/{name}", f"Label {label!r} deleted.")
