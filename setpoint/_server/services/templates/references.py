"""Write-time checks of composition and templates (the rules `setpoint.push()` runs too, see
`setpoint._remote.sync`), on the pure core `setpoint._core.templates`."""

from __future__ import annotations

from typing import Any

from setpoint._core import templates
from setpoint._server.services.errors import ConflictError, InvalidError
from setpoint._server.services.wire import read_variable_wire
from setpoint._server.storage import ReadTx

__all__ = ["check_composition", "check_not_referenced", "references_of", "served_values", "used_by"]


def served_values(wire: dict[str, Any]) -> dict[str | None, str]:
    """``{label: serialized value}`` of a variable's wire JSON: each label with a value, and ``latest``."""
    values: dict[str | None, str] = {}
    latest = wire.get("latest_version")
    if latest:
        values["latest"] = latest["serialized_value"]
    for label, target in (wire.get("labels") or {}).items():
        value = target.get("serialized_value")
        if isinstance(value, str):
            values[label] = value
    return values


class _Graph:
    """The project's variables as far as a check walks them, read lazily inside one transaction."""

    def __init__(self, tx: ReadTx, project_id: int, changed: dict[str, Any] | None = None) -> None:
        self.tx = tx
        self.project_id = project_id
        self.changed = changed
        self._values: dict[str, dict[str | None, str]] = {}
        self._aliases: dict[str, str] | None = None

    def canonical(self, name: str) -> str | None:
        """The variable a reference names (following aliases), or None if there is none."""
        if self.changed is not None and name == self.changed["name"]:
            return name
        if self.tx.get_variable(self.project_id, name) is not None:
            return name
        if self._aliases is None:
            self._aliases = {
                alias: owner
                for owner, aliases in self.tx.variable_aliases(self.project_id).items()
                for alias in aliases
            }
        return self._aliases.get(name)

    def values(self, name: str) -> dict[str | None, str]:
        found = self._values.get(name)
        if found is not None:
            return found
        canonical = self.canonical(name)
        if canonical is None:
            found = {}
        elif self.changed is not None and canonical == self.changed["name"]:
            found = served_values(self.changed)
        else:
            variable = self.tx.get_variable(self.project_id, canonical)
            found = served_values(read_variable_wire(self.tx, variable)) if variable is not None else {}
        self._values[name] = found
        return found

    def references(self, name: str) -> set[str]:
        return {ref for value in self.values(name).values() for ref in templates.find_references(value)}


def references_of(tx: ReadTx, project_id: int, name: str) -> list[str]:
    """The variables ``name``'s served values reference (sorted)."""
    return sorted(_Graph(tx, project_id).references(name))


def check_composition(tx: ReadTx, project_id: int, wire: dict[str, Any]) -> None:
    """Refuse (422) a variable state (its wire JSON after a change) whose ``@{references}@`` do not parse, name
    no variable, close a cycle or nest deeper than 20, or whose ``{{fields}}`` (through references too) its
    ``template_inputs_schema`` does not declare. Template variables that reference this one are re-checked."""
    name = wire["name"]
    graph = _Graph(tx, project_id, wire)
    own = served_values(wire)
    refs: set[str] = set()
    for label, value in own.items():
        found, errors = templates.find_references_and_errors(value)
        if errors:
            raise InvalidError(
                f"{name!r} label {label!r}: {errors[0]}", errors=[{"loc": f"labels.{label}", "msg": e} for e in errors]
            )
        refs.update(found)
        for ref in found:
            if graph.canonical(ref) is None:
                raise InvalidError(
                    f"{name!r} label {label!r} references @{{{ref}}}@, but there is no variable {ref!r} in this "
                    "project; create it first or fix the reference",
                    errors=[{"loc": f"labels.{label}", "msg": f"unknown variable {ref!r}"}],
                )
    if refs:
        cycle = templates.find_cycle(name, refs, graph.references)
        if cycle is not None:
            raise InvalidError(
                f"{name!r} would form a reference cycle: {' -> '.join(cycle)}; remove one of these references",
                errors=[{"loc": "references", "msg": " -> ".join(cycle)}],
            )
        chain = templates.longest_chain(name, graph.references, templates.MAX_COMPOSITION_DEPTH + 1)
        depth = len(chain) - 2  # the nesting depth of the deepest value that is itself composed
        if depth > templates.MAX_COMPOSITION_DEPTH:
            raise InvalidError(
                f"{name!r} nests references {depth} levels deep ({' -> '.join(chain)}); at most "
                f"{templates.MAX_COMPOSITION_DEPTH} levels are expanded, so SDKs would serve the code default",
                errors=[{"loc": "references", "msg": " -> ".join(chain)}],
            )
    schema = wire.get("template_inputs_schema")
    if schema is not None:
        _check_fields(name, schema, graph)
    for user in used_by(tx, project_id, name, graph):
        user_schema = _template_schema(tx, project_id, user)
        if user_schema is not None:
            _check_fields(user, user_schema, graph)


def _template_schema(tx: ReadTx, project_id: int, name: str) -> dict[str, Any] | None:
    variable = tx.get_variable(project_id, name)
    return variable.fields.template_inputs_schema if variable is not None else None


def _check_fields(name: str, schema: dict[str, Any], graph: _Graph) -> None:
    issues = templates.validate_template_fields(name, schema, graph.values)
    if issues:
        raise InvalidError(
            issues[0].message(),
            errors=[
                {
                    "loc": ".".join(
                        [issue.found_in_variable, "labels", issue.found_in_label or "", issue.field_name]
                    ).replace("..", "."),
                    "msg": issue.message(),
                }
                for issue in issues[:20]
            ],
        )


def used_by(tx: ReadTx, project_id: int, name: str, graph: _Graph | None = None) -> list[str]:
    """The variables whose served values reference ``name`` (directly), sorted."""
    graph = graph or _Graph(tx, project_id)
    users = []
    for candidate in tx.variables_mentioning(project_id, name):
        if candidate != name and name in graph.references(candidate):
            users.append(candidate)
    return users


def check_not_referenced(tx: ReadTx, project_id: int, name: str, action: str) -> None:
    """409 naming the variables that reference ``name`` (before it is deleted or renamed)."""
    users = used_by(tx, project_id, name)
    if users:
        raise ConflictError(
            f"cannot {action} {name!r}: it is referenced as @{{{name}}}@ by {', '.join(repr(u) for u in users)}; "
            "remove or change those references first"
        )
