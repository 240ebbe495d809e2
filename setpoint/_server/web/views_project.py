"""Project pages: the simulator, variable types and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from setpoint._server.api.deps import KeyId, server_state
from setpoint._server.services import keys as key_service
from setpoint._server.services import simulate
from setpoint._server.services import types as type_service
from setpoint._server.services.errors import InvalidError, ServiceError
from setpoint._server.services.lifecycle import parse_schema
from setpoint._server.services.models import VariableTypeIn
from setpoint._server.services.people import roles
from setpoint._server.web.render import Page, field, page

router = APIRouter(include_in_schema=False)
Current = Annotated[Page, Depends(page)]


def _simulate(current: Page, key: str, attributes_text: str, inputs_text: str = "") -> Response:
    results: list[simulate.Resolution] = []
    error = ""
    submitted = "key" in current.request.query_params
    if submitted:
        try:
            attributes = simulate.parse_attributes(attributes_text)
            inputs = simulate.parse_inputs(inputs_text)
            snapshot = server_state(current.request).snapshots.get(current.project.id)
            results = simulate.resolve(snapshot.compiled(), key.strip() or None, attributes, inputs=inputs)
        except ServiceError as exc:
            error = exc.message
    return current.render(
        "simulator.html",
        400 if error else 200,
        key=key,
        attributes=attributes_text,
        inputs=inputs_text,
        results=results,
        submitted=submitted,
        error=error,
        nav="simulator",
    )


@router.get("/p/{project}/simulator")
async def simulator(current: Current, key: str = "", attributes: str = "", inputs: str = "") -> Response:
    """A targeting key, attributes and template inputs in; the label, value and reason of every variable out."""
    return await run_in_threadpool(_simulate, current, key, attributes, inputs)


def _types_page(current: Page, values: dict[str, str], error: str = "", status_code: int = 200) -> Response:
    types = type_service.list_types(current.ctx, current.project.id)
    with current.ctx.storage.read() as tx:
        users: dict[str, list[str]] = {}
        for variable in tx.list_variables(current.project.id):
            if variable.fields.type_name:
                users.setdefault(variable.fields.type_name, []).append(variable.name)
    return current.render("types.html", status_code, types=types, users=users, values=values, error=error, nav="types")


@router.get("/p/{project}/types")
async def types(current: Current) -> Response:
    """Variable types (named JSON schemas pushed from code or created here)."""
    return await run_in_threadpool(_types_page, current, {})


@router.post("/p/{project}/types")
async def save_type(current: Current) -> Response:
    """Create or replace a variable type."""
    form = await current.form()
    values = {k: field(form, k) for k in ("name", "description", "json_schema")}
    try:
        schema = parse_schema(values["json_schema"])
        if schema is None:
            raise InvalidError("enter the type's JSON schema")
        description = values["description"] or None
        body = VariableTypeIn(name=values["name"].strip(), json_schema=schema, description=description)
        await run_in_threadpool(type_service.upsert_type, current.ctx, current.project.id, body, current.session.actor)
    except ServiceError as exc:
        return await run_in_threadpool(_types_page, current, values, exc.message, exc.status_code)
    except ValueError as exc:
        return await run_in_threadpool(_types_page, current, values, f"invalid type: {exc}", 422)
    return current.redirect("/types", f"Saved type {values['name'].strip()!r}.")


def _keys_page(current: Page, error: str = "", status_code: int = 200, **extra: object) -> Response:
    keys = key_service.list_keys(current.ctx, current.project.id)
    extra.setdefault("values", {"name": "", "scopes": ["read"]})  # the new-key form: as typed after an error
    return current.render("keys.html", status_code, keys=keys, error=error, nav="keys", **extra)


NEW_KEY_COOKIE = "setpoint_new_key"


@router.get("/p/{project}/keys")
async def keys(current: Current) -> Response:
    """The project's API keys (admins create and revoke them); right after creating one, its secret, shown
    this once."""
    new_key = current.request.cookies.get(NEW_KEY_COOKIE, "")
    token, _, key_name = new_key.partition(":")
    response = await run_in_threadpool(_keys_page, current, new_key=token, new_key_name=key_name)
    if new_key:
        response.delete_cookie(NEW_KEY_COOKIE, path=current.base + "/keys")
        response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/p/{project}/keys")
async def create_key(current: Current) -> Response:
    """Create a key, then show its secret once: it travels to the next page in a short-lived, HttpOnly,
    path-scoped cookie that the page deletes (so reloading the page neither shows it again nor makes
    another key). The key belongs to the person who made it and never carries more than their role."""
    form = await current.form(roles.ADMIN)
    scopes = [s for s in ("read", "write", "read_external") if field(form, f"scope_{s}") == "yes"]
    typed = {"name": field(form, "name"), "scopes": scopes}
    if not scopes:
        message = "Choose at least one scope: read to fetch the config, write to change it."
        return await run_in_threadpool(_keys_page, current, message, 422, values=typed)
    try:
        parsed = key_service.parse_scopes(scopes)
        created = await run_in_threadpool(
            lambda: key_service.create_key(
                current.ctx,
                current.project.name,
                parsed,
                current.session.actor,
                name=field(form, "name").strip(),
                create_project=False,
                user_id=current.session.user.id,
            )
        )
    except ServiceError as exc:
        return await run_in_threadpool(_keys_page, current, exc.message, exc.status_code, values=typed)
    response = current.redirect("/keys")
    response.set_cookie(
        NEW_KEY_COOKIE,
        f"{created.token}:{created.key.name}",
        max_age=120,
        httponly=True,
        samesite="strict",
        secure=current.request.url.scheme == "https",
        path=current.base + "/keys",
    )
    return response


@router.post("/p/{project}/keys/{key_id}/revoke")
async def revoke_key(current: Current, key_id: KeyId) -> Response:
    """Revoke a key: it stops working at once."""
    await current.form(roles.ADMIN)
    try:
        key = await run_in_threadpool(
            key_service.revoke_key, current.ctx, current.project.id, key_id, current.session.actor
        )
    except ServiceError as exc:
        return await run_in_threadpool(_keys_page, current, exc.message, exc.status_code)
    return current.redirect("/keys", f"Revoked key {key.name!r}.")
