"""Creating, renaming and deleting variables from the management UI and API."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from setpoint._server.services import audit, input_limits
from setpoint._server.services import variables as var_service
from setpoint._server.services.catalog import schema_for_kind
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.editing import check_revision, require, stale_message
from setpoint._server.services.errors import ConflictError, InvalidError, PreconditionFailedError
from setpoint._server.services.models import VariableIn
from setpoint._server.services.templates import check_not_referenced
from setpoint._server.services.validation import check_json_schema, check_variable_write
from setpoint._server.services.variables import VariableView
from setpoint._server.services.wire import read_variable_wire
from setpoint._server.storage import AlreadyExistsError, StaleRevisionError

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def check_variable_name(name: str) -> None:
    """A variable name is a Python identifier (the ``name=`` of ``setpoint.var``), up to 128 characters."""
    if not name:
        raise InvalidError("enter a name for the variable")
    if not _NAME.match(name) or len(name) > 128:
        raise InvalidError(
            f"variable name {name!r} is invalid: use letters, digits and underscores, not starting with a digit "
            "(it must match the name= in your setpoint.var() call)"
        )


def parse_schema(text: str, what: str = "the JSON schema") -> dict[str, Any] | None:
    """A JSON schema typed into a form (blank: none); 422 when it is not a JSON object or not a valid schema."""
    if not text.strip():
        return None
    try:
        schema = input_limits.loads(text, "the JSON schema")
    except ValueError as exc:
        raise InvalidError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise InvalidError(f'{what} must be a JSON object, e.g. {{"type": "object"}}')
    check_json_schema(schema, what)
    return schema


def create_variable(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    actor: str,
    *,
    kind: str = "json",
    description: str | None = None,
    json_schema: dict[str, Any] | None = None,
    type_name: str | None = None,
    external: bool = False,
    template_inputs_schema: dict[str, Any] | None = None,
) -> VariableView:
    """Create an empty variable (no versions yet: the code default is served) of a value type or pushed type;
    ``external`` makes it readable by ``read_external`` keys (OFREP); with ``template_inputs_schema`` it is a
    template variable (every version is checked against it)."""
    check_variable_name(name)
    schema = None if type_name else schema_for_kind(kind, json_schema)
    body = VariableIn(
        name=name,
        description=description or None,
        json_schema=schema,
        type_name=type_name or None,
        external=external,
        template_inputs_schema=template_inputs_schema,
    )
    return var_service.create_variable(ctx, project_id, body, actor)


def delete_variable(ctx: ServiceContext, project_id: int, name: str, actor: str, if_match: int | None = None) -> None:
    """Delete a variable with its versions and labels (the audit history keeps its last state)."""
    var_service.delete_variable(ctx, project_id, name, actor, if_match)


def rename_variable(
    ctx: ServiceContext,
    project_id: int,
    name: str,
    new_name: str,
    actor: str,
    *,
    keep_alias: bool = True,
    if_match: int | None = None,
) -> VariableView:
    """Rename a variable in place, keeping its versions, labels and their history, targeting and version
    descriptions.

    With ``keep_alias`` the old name stays an alias, so code still calling ``setpoint.var(name=old)`` keeps
    resolving it.
    """
    check_variable_name(new_name)
    if new_name == name:
        raise InvalidError("the new name is the same as the current one")
    with ctx.storage.write() as tx:
        current = require(tx, project_id, name)
        check_revision(current, if_match)
        if tx.get_variable(project_id, new_name) is not None:
            raise ConflictError(f"a variable called {new_name!r} already exists; choose another name")
        before = read_variable_wire(tx, current)
        if not keep_alias:  # with the alias kept, @{old_name}@ references keep resolving
            check_not_referenced(tx, project_id, name, "rename")
        aliases = {a for a in current.fields.aliases or [] if a != new_name}
        if keep_alias:
            aliases.add(name)
        fields = replace(current.fields, aliases=sorted(aliases) or None)
        try:
            renamed = tx.rename_variable(current, new_name, fields)
        except AlreadyExistsError:
            raise ConflictError(f"a variable called {new_name!r} already exists; choose another name") from None
        except StaleRevisionError:
            raise PreconditionFailedError(stale_message(name, current.revision + 1, current.revision)) from None
        after = read_variable_wire(tx, renamed)
        check_variable_write(tx, project_id, after)
        audit.record(tx, project_id, actor, "rename", "variable", name, before, after)
        audit.record(tx, project_id, actor, "rename", "variable", new_name, before, after)
        gone = Change(project_id=project_id, entity="variable", event="deleted", name=name)
        made = Change(project_id=project_id, entity="variable", event="created", name=new_name)
        ctx.sink.record(tx, gone)
        ctx.sink.record(tx, made)
    ctx.sink.applied(gone)
    ctx.sink.applied(made)
    return VariableView(after, renamed.revision)
