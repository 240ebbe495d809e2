"""A variable's Targeting, History and Settings tabs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from setpoint._server.services import audit, catalog, editing, lifecycle
from setpoint._server.services.change_requests import service as review_service
from setpoint._server.services.errors import InvalidError, ServiceError
from setpoint._server.services.people import roles
from setpoint._server.services.usage import report as usage_report
from setpoint._server.storage.change_requests import ACTIVE
from setpoint._server.storage.usage import hour_start
from setpoint._server.web import targeting_form, views_schedules
from setpoint._server.web.render import Page, field, page, revision

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]


def _ui_status(exc: ServiceError) -> int:
    return 409 if exc.status_code == 412 else exc.status_code


def review_note(current: Page) -> str:
    """What the Targeting tab says about review ("" when changes apply at once)."""
    from setpoint._server.services.people.roles import ADMIN

    settings = review_service.get_settings(current.ctx, current.project.id)
    if not settings.enabled or (current.can(ADMIN) and settings.admins_bypass):
        return ""
    what = (
        "Changes here need review"
        if settings.all_targeting
        else "Changes that touch protected labels (" + ", ".join(current.project.protected_labels) + ") need review"
    )
    return (
        f"{what}: saving opens a change request that another person with the {settings.approver_role} role "
        "approves before it applies."
    )


def targeting_page(
    current: Page,
    name: str,
    error: str = "",
    status_code: int = 200,
    draft: tuple[dict[str, Any], list[dict[str, Any]]] | None = None,
) -> Response:
    """The Targeting tab (with ``draft``: the refused form as it was sent), its schedules and progressive rollout."""
    # The panel is read before the variable: a step that commits in between then shows in the form too, never
    # as "applied" above weights that do not have it yet.
    schedule_panel = views_schedules.panel(current, name)
    record = catalog.get_record(current.ctx, current.project.id, name)
    labels = catalog.list_labels(current.ctx, current.project.id, name)
    with current.ctx.storage.read() as tx:
        segments = [s.key for s in tx.list_segments(current.project.id)]
    rollout, overrides = draft if draft is not None else (record.fields.rollout, record.fields.overrides)
    end = hour_start(datetime.now(UTC)) + timedelta(hours=1)
    observed = usage_report.usage_series(current.ctx, current.project.id, name, end - timedelta(hours=24), end)
    return current.render(
        "variable_targeting.html",
        status_code,
        variable=record,
        labels=[lb.name for lb in labels],
        rollout=rollout.get("labels", {}),
        overrides=overrides,
        segments=segments,
        observed=observed.split(),
        observed_total=observed.total,
        kinds=targeting_form.KIND_LABELS,
        kinds_json=targeting_form.kinds_json(),
        operand_field=targeting_form.operand_field,
        operand_text=targeting_form.operand_text,
        review=review_note(current),
        waiting=review_service.list_requests(current.ctx, current.project.id, ACTIVE, name),
        error=error,
        tab="targeting",
        nav="variables",
        **schedule_panel,
    )


@router.get("/p/{project}/variables/{name}/targeting")
async def targeting_tab(current: Current, name: str) -> Response:
    """The default rollout (percentages, code-default remainder) and the ordered override rules."""
    return await run_in_threadpool(targeting_page, current, name)


@router.post("/p/{project}/variables/{name}/targeting")
async def save_targeting(current: Current, name: str) -> Response:
    """Save the rollout and rules; refused with a message when weights pass 100% or the edit is stale."""
    form = await current.form()
    draft: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
    try:
        draft = targeting_form.parse(form.multi_items())
        rollout, overrides = draft
        await run_in_threadpool(
            lambda: editing.set_targeting(
                current.ctx,
                current.project.id,
                name,
                rollout,
                overrides,
                current.session.actor,
                if_match=revision(form),
            )
        )
    except ServiceError as exc:
        # A stale edit shows the current saved state (not the refused draft), so nothing is overwritten blindly.
        shown = None if exc.status_code == 412 else draft
        return await run_in_threadpool(targeting_page, current, name, exc.message, _ui_status(exc), draft=shown)
    return current.redirect(f"/variables/{name}/targeting", "Targeting saved.")


def _history_page(current: Page, name: str, error: str = "", status_code: int = 200) -> Response:
    record = catalog.get_record(current.ctx, current.project.id, name)
    found = catalog.variable_history(current.ctx, current.project.id, name)
    versions = catalog.list_version_info(current.ctx, current.project.id, name)
    changes = [(e, catalog.describe_change(e), audit.change_lines(e.before, e.after)) for e in found.entries]
    labels_all = [lb.name for lb in catalog.list_labels(current.ctx, current.project.id, name)]
    return current.render(
        "variable_history.html",
        status_code,
        variable=record,
        changes=changes,
        moves=found.moves,
        versions=versions,
        labels_all=labels_all,
        error=error,
        tab="history",
        nav="variables",
    )


@router.get("/p/{project}/variables/{name}/history")
async def history_tab(current: Current, name: str) -> Response:
    """Every change with who and when, label moves, and restore buttons for each version."""
    return await run_in_threadpool(_history_page, current, name)


@router.post("/p/{project}/variables/{name}/versions/{version}/restore")
async def restore(current: Current, name: str, version: int) -> Response:
    """Restore an earlier version as a new version (optionally moving a label onto it)."""
    form = await current.form()
    label = field(form, "label").strip() or None
    try:
        new, _ = await run_in_threadpool(
            lambda: editing.restore_version(
                current.ctx,
                current.project.id,
                name,
                version,
                current.session.actor,
                label=label,
                if_match=revision(form),
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_history_page, current, name, exc.message, _ui_status(exc))
    moved = f"; label {label!r} points at it" if label else ""
    return current.redirect(f"/variables/{name}", f"Restored version {version} as version {new.version}{moved}.")


def _settings_page(current: Page, name: str, error: str = "", status_code: int = 200) -> Response:
    record = catalog.get_record(current.ctx, current.project.id, name)
    return current.render(
        "variable_settings.html",
        status_code,
        variable=record,
        kind=catalog.value_kind(record.fields.json_schema, record.fields.type_name),
        error=error,
        tab="settings",
        nav="variables",
    )


@router.get("/p/{project}/variables/{name}/settings")
async def settings_tab(current: Current, name: str) -> Response:
    """Description, aliases, rename and delete."""
    return await run_in_threadpool(_settings_page, current, name)


@router.post("/p/{project}/variables/{name}/settings")
async def save_settings(current: Current, name: str) -> Response:
    """Save the description, aliases and external flag."""
    form = await current.form()
    aliases = [a for a in field(form, "aliases").replace("\n", ",").split(",") if a.strip()]
    try:
        await run_in_threadpool(
            lambda: editing.update_details(
                current.ctx,
                current.project.id,
                name,
                current.session.actor,
                description=field(form, "description").strip(),
                aliases=aliases,
                set_description=True,
                set_aliases=True,
                external=field(form, "external") == "yes",
                if_match=revision(form),
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_settings_page, current, name, exc.message, _ui_status(exc))
    return current.redirect(f"/variables/{name}/settings", "Settings saved.")


@router.post("/p/{project}/variables/{name}/rename")
async def rename(current: Current, name: str) -> Response:
    """Rename the variable (the old name stays an alias when asked)."""
    form = await current.form()
    new_name = field(form, "new_name").strip()
    try:
        await run_in_threadpool(
            lambda: lifecycle.rename_variable(
                current.ctx,
                current.project.id,
                name,
                new_name,
                current.session.actor,
                keep_alias=field(form, "keep_alias") == "yes",
                if_match=revision(form),
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_settings_page, current, name, exc.message, _ui_status(exc))
    return current.redirect(f"/variables/{new_name}/settings", f"Renamed {name!r} to {new_name!r}.")


@router.post("/p/{project}/variables/{name}/delete")
async def delete(current: Current, name: str) -> Response:
    """Delete the variable (admins) after the user typed its name to confirm."""
    form = await current.form(roles.ADMIN)
    try:
        if field(form, "confirm").strip() != name:
            raise InvalidError(f"type the variable's name ({name}) to confirm that it should be deleted")
        await run_in_threadpool(
            lifecycle.delete_variable, current.ctx, current.project.id, name, current.session.actor, revision(form)
        )
    except ServiceError as exc:
        return await run_in_threadpool(_settings_page, current, name, exc.message, _ui_status(exc))
    return current.redirect("/variables", f"Deleted variable {name!r}.")
