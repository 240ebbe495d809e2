"""What a push would change, computed without I/O and rendered as the human diff shown before changing anything.

Three diffs: `plan_push` (variables from code: create, or update the schema keeping labels and rollouts),
`plan_config` (a whole config file: create, update field by field, delete in ``replace`` mode) and
`plan_types` (variable types). Each renders itself as Rich markup (``to_markup``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from rich.markup import escape

from setpoint._core import templates
from setpoint.config import LabeledValue, Segment, VariableConfig, VariablesConfig, VariableTypeConfig
from setpoint.config._variables import VariableLike

__all__ = [
    "ConfigPlan",
    "ConstraintChange",
    "Incompatibility",
    "PushChange",
    "PushPlan",
    "TypesPlan",
    "VariableLike",
    "constraint_changes",
    "incompatible_values",
    "plan_config",
    "plan_push",
    "plan_types",
    "segment_order",
]


@dataclass(frozen=True)
class Incompatibility:
    """A server value (label, or ``latest``) that does not validate against a type."""

    variable: str
    label: str
    version: int | None
    error: str


def _short_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    more = exc.error_count() - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def incompatible_values(adapter: TypeAdapter[Any], variable: VariableConfig) -> list[Incompatibility]:
    """Label values (inline) and the latest version of ``variable`` that ``adapter`` rejects."""
    found: list[Incompatibility] = []
    values: list[tuple[str, int | None, str]] = [
        (name, label.version, label.serialized_value)
        for name, label in variable.labels.items()
        if isinstance(label, LabeledValue)
    ]
    if variable.latest_version is not None:
        values.append(("latest", variable.latest_version.version, variable.latest_version.serialized_value))
    checked: dict[str, str | None] = {}
    for label, version, serialized in values:
        if serialized not in checked:
            try:
                adapter.validate_json(serialized)
                checked[serialized] = None
            except ValidationError as exc:
                checked[serialized] = _short_error(exc)
        error = checked[serialized]
        if error is not None:
            found.append(Incompatibility(variable.name, label, version, error))
    return found


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else _canonical(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- pushing variables from code ---------------------------------------------------------------------------


@dataclass
class PushChange:
    """One variable of a push: ``create``, ``update_schema`` or ``no_change``."""

    name: str
    kind: Literal["create", "update_schema", "no_change"]
    local_schema: dict[str, Any]
    description: str | None
    example: str | None
    server: VariableConfig | None = None
    incompatible: list[Incompatibility] = field(default_factory=list)
    description_differs: bool = False
    template_inputs_schema: dict[str, Any] | None = None


@dataclass
class PushPlan:
    """What `setpoint.push()` would do."""

    changes: list[PushChange]
    server_only: list[str]

    @property
    def has_changes(self) -> bool:
        """Whether anything would be written."""
        return any(c.kind != "no_change" for c in self.changes)

    @property
    def constraint_changes(self) -> list[tuple[str, ConstraintChange]]:
        """Each (variable, change) of a schema update that narrows or widens what the server accepts, e.g. a
        ``minLength`` written in the UI that the schema derived from the code drops."""
        return [
            (c.name, change)
            for c in self.changes
            if c.kind == "update_schema"
            for change in constraint_changes(c.server.json_schema if c.server is not None else None, c.local_schema)
        ]

    @property
    def breaking(self) -> list[Incompatibility]:
        """Existing values that a schema change would break (what ``strict`` refuses)."""
        return [i for c in self.changes if c.kind == "update_schema" for i in c.incompatible]

    def to_markup(self) -> str:
        """The diff as Rich markup."""
        lines: list[str] = []
        creates = [c for c in self.changes if c.kind == "create"]
        updates = [c for c in self.changes if c.kind == "update_schema"]
        unchanged = [c for c in self.changes if c.kind == "no_change"]
        if creates:
            lines.append("[bold green]=== Variables to CREATE ===[/]")
            for c in creates:
                lines.append(f"  [green]+ {escape(c.name)}[/]")
                if c.description:
                    lines.append(f"    Description: {escape(c.description)}")
                if c.example is not None:
                    lines.append(f"    Example value: {escape(_short(c.example, 200))}")
                else:
                    lines.append("    (no example value: the default is a function)")
        if updates:
            lines.append("[bold yellow]=== Variables to UPDATE (schema changed) ===[/]")
            for c in updates:
                lines.append(f"  [yellow]~ {escape(c.name)}[/]")
                old = c.server.json_schema if c.server is not None else None
                lines.extend(schema_changes(old, c.local_schema))
                lines.extend(_constraint_lines(constraint_changes(old, c.local_schema)))
                lines.extend(_incompatible_lines(c.incompatible, "would no longer validate"))
        if unchanged:
            lines.append(f"[dim]=== No changes needed ({len(unchanged)} variables) ===[/]")
            lines.extend(f"  [dim]  {escape(c.name)}[/]" for c in unchanged)
            for c in unchanged:
                lines.extend(_incompatible_lines(c.incompatible, f"of {c.name} do not validate (schema unchanged)"))
        if self.server_only:
            lines.append("[dim]=== On the server only (not in this code) ===[/]")
            lines.extend(f"  [dim]? {escape(n)}[/]" for n in self.server_only)
        differing = [c for c in self.changes if c.description_differs]
        if differing:
            lines.append("[cyan]=== Description differences (informational) ===[/]")
            for c in differing:
                server = c.server.description if c.server is not None else None
                lines.append(f"  [cyan]! {escape(c.name)}[/]")
                lines.append(f"    Local:  {escape(c.description or '(none)')}")
                lines.append(f"    Server: {escape(server or '(none)')}")
        return "\n".join(lines)


def schema_changes(old: Any, new: Any) -> list[str]:
    """Markup lines saying how a JSON schema changed: property by property when both describe objects."""
    if not (isinstance(old, dict) and isinstance(new, dict) and "properties" in old and "properties" in new):
        return [
            f"    [red]- json_schema: {escape(_short(old, 200))}[/]",
            f"    [green]+ json_schema: {escape(_short(new, 200))}[/]",
        ]
    lines: list[str] = []
    old_props, new_props = old["properties"], new["properties"]
    for prop in [*old_props, *(p for p in new_props if p not in old_props)]:
        before, after = old_props.get(prop), new_props.get(prop)
        if before is None:
            lines.append(f"    [green]+ property {escape(prop)}: {escape(_short(after))}[/]")
        elif after is None:
            lines.append(f"    [red]- property {escape(prop)}: {escape(_short(before))}[/]")
        elif _canonical(before) != _canonical(after):
            lines.append(
                f"    [yellow]~ property {escape(prop)}: {escape(_short(before))} -> {escape(_short(after))}[/]"
            )
    for key in sorted((old.keys() | new.keys()) - {"properties", "title", "description"}):
        if _canonical(old.get(key)) != _canonical(new.get(key)):
            lines.append(
                f"    [yellow]~ {escape(key)}: {escape(_short(old.get(key)))} -> {escape(_short(new.get(key)))}[/]"
            )
    return lines or ["    [yellow]~ json_schema (titles or descriptions only)[/]"]


_LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
_EXACT = ("pattern", "format", "const", "multipleOf", "uniqueItems")


@dataclass(frozen=True)
class ConstraintChange:
    """A validation keyword that a schema replacement changes, and in which direction."""

    path: str
    """Where in the value: ``(value)`` for the whole value, else a dotted property path (``items[]`` for lists)."""
    keyword: str
    before: Any
    after: Any
    direction: Literal["narrows", "widens", "changes"]

    def describe(self) -> str:
        """E.g. ``instructions: minLength 3 -> (none)``."""
        before = "(none)" if self.before is None else _short(self.before, 60)
        after = "(none)" if self.after is None else _short(self.after, 60)
        return f"{self.path}: {self.keyword} {before} -> {after}"


def _direction(keyword: str, before: Any, after: Any) -> Literal["narrows", "widens", "changes"]:
    if before is None:
        return "widens" if keyword == "additionalProperties" and after is True else "narrows"
    if after is None:
        return "changes" if keyword == "additionalProperties" and before is True else "widens"
    if keyword == "additionalProperties":
        if isinstance(before, bool) and isinstance(after, bool):
            return "narrows" if before and not after else "widens"
        return "changes"
    if keyword in ("enum", "required") and isinstance(before, list) and isinstance(after, list):
        old, new = {_canonical(v) for v in before}, {_canonical(v) for v in after}
        if keyword == "required":
            old, new = new, old  # requiring more names accepts fewer values
        if new < old:
            return "narrows"
        return "widens" if new > old else "changes"
    both_numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    if both_numbers and keyword in _LOWER_BOUNDS:
        return "narrows" if after > before else "widens"
    if both_numbers and keyword in _UPPER_BOUNDS:
        return "narrows" if after < before else "widens"
    return "changes"


def constraint_changes(old: Any, new: Any, path: str = "(value)") -> list[ConstraintChange]:
    """The validation keywords (bounds, lengths, patterns, enums, ``required``, ``additionalProperties``) that
    replacing the JSON schema ``old`` by ``new`` changes, following object properties and list items."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    found: list[ConstraintChange] = []
    keywords = (*_LOWER_BOUNDS, *_UPPER_BOUNDS, *_EXACT, "enum", "required", "additionalProperties")
    for keyword in keywords:
        before, after = old.get(keyword), new.get(keyword)
        if isinstance(before, dict) or isinstance(after, dict):
            continue  # a schema for extra properties, not a yes/no; the schema diff above shows it
        if _canonical(before) != _canonical(after):
            found.append(ConstraintChange(path, keyword, before, after, _direction(keyword, before, after)))
    old_props, new_props = old.get("properties"), new.get("properties")
    if isinstance(old_props, dict) and isinstance(new_props, dict):
        for prop in old_props.keys() & new_props.keys():
            child = prop if path == "(value)" else f"{path}.{prop}"
            found.extend(constraint_changes(old_props[prop], new_props[prop], child))
    if isinstance(old.get("items"), dict):
        child = "items[]" if path == "(value)" else f"{path}[]"
        found.extend(constraint_changes(old["items"], new.get("items"), child))
    return found


def _constraint_lines(changes: Sequence[ConstraintChange]) -> list[str]:
    colours = {"narrows": "red", "widens": "yellow", "changes": "yellow"}
    return [f"    [{colours[c.direction]}]{c.direction}: {escape(c.describe())}[/]" for c in changes]


def _incompatible_lines(items: Sequence[Incompatibility], what: str) -> list[str]:
    if not items:
        return []
    lines = [f"    [red]Existing values that {escape(what)}:[/]"]
    for item in items:
        version = "" if item.version is None else f" (version {item.version})"
        lines.append(f"      [red]- {escape(item.label)}{version}: {escape(item.error)}[/]")
    return lines


def _example(variable: VariableLike) -> str | None:
    if callable(variable.default):
        return None
    return variable.type_adapter.dump_json(variable.default).decode()


def plan_push(variables: Sequence[VariableLike], server: VariablesConfig) -> PushPlan:
    """Compare variables in code with the server's config."""
    changes: list[PushChange] = []
    for variable in variables:
        schema = variable.type_adapter.json_schema()
        inputs_schema: dict[str, Any] | None = getattr(variable, "template_inputs_schema", None)
        existing = server.variables.get(variable.name)
        if existing is None:
            changes.append(
                PushChange(
                    variable.name,
                    "create",
                    schema,
                    variable.description,
                    _example(variable),
                    template_inputs_schema=inputs_schema,
                )
            )
            continue
        incompatible = incompatible_values(variable.type_adapter, existing)
        same = _canonical(schema) == _canonical(existing.json_schema or {}) and _canonical(inputs_schema) == _canonical(
            existing.template_inputs_schema
        )
        kind: Literal["update_schema", "no_change"] = "no_change" if same else "update_schema"
        differs = (variable.description or None) != (existing.description or None)
        changes.append(
            PushChange(
                variable.name,
                kind,
                schema,
                variable.description,
                _example(variable),
                existing,
                incompatible,
                differs,
                inputs_schema,
            )
        )
    local = {v.name for v in variables}
    return PushPlan(changes, sorted(n for n in server.variables if n not in local))


def pushed_config(change: PushChange) -> VariableConfig:
    """The variable config that applying ``change`` writes."""
    if change.kind == "create" or change.server is None:
        return VariableConfig(
            name=change.name,
            description=change.description,
            json_schema=change.local_schema,
            example=change.example,
            template_inputs_schema=change.template_inputs_schema,
        )
    # A schema update keeps everything the server has (labels, rollout, overrides, description).
    return change.server.model_copy(
        update={
            "json_schema": change.local_schema,
            "example": change.example,
            "template_inputs_schema": change.template_inputs_schema,
        }
    )


def reference_order(names: Sequence[str], configs: dict[str, VariableConfig]) -> list[str]:
    """``names`` ordered so that a variable comes after the ones among them its values ``@{reference}@``
    (so a server that refuses references to missing variables accepts each write); otherwise in the given
    order. Reversed, it is the order to delete them in."""
    wanted = list(dict.fromkeys(names))
    pending = set(wanted)

    def refs(name: str) -> set[str]:
        config = configs.get(name)
        if config is None:
            return set()
        values = [t.serialized_value for t in config.labels.values() if isinstance(t, LabeledValue)]
        if config.latest_version is not None:
            values.append(config.latest_version.serialized_value)
        return {ref for value in values for ref in templates.find_references(value)} & pending

    ordered: list[str] = []
    while pending:
        ready = [n for n in wanted if n in pending and not (refs(n) - {n})]
        if not ready:  # a cycle (the server refuses it anyway): keep the given order
            ready = [n for n in wanted if n in pending]
        for name in ready:
            pending.discard(name)
            ordered.append(name)
    return ordered


def composition_problems(variables: Sequence[VariableLike], server: VariablesConfig) -> list[tuple[str, str]]:
    """What the server's write-time checks would refuse after pushing ``variables``, checked before writing:
    ``@{references}@`` (in code defaults and server values) that do not parse, name no variable (on the server
    or in code), form a cycle or nest deeper than 20, and ``{{fields}}`` of template variables (through
    references too) that their ``template_inputs_schema`` does not declare. ``[(variable, message)]``."""
    values: dict[str, dict[str | None, str]] = {}
    known: set[str] = set(server.variables)
    for config in server.variables.values():
        known.update(config.aliases or ())
        own: dict[str | None, str] = {
            label: target.serialized_value
            for label, target in config.labels.items()
            if isinstance(target, LabeledValue)
        }
        if config.latest_version is not None:
            own["latest"] = config.latest_version.serialized_value
        values[config.name] = own
        for alias in config.aliases or ():
            values[alias] = own
    for variable in variables:
        known.add(variable.name)
        example = _example(variable)
        if example is not None:
            values.setdefault(variable.name, {})[None] = example

    def refs_of(name: str) -> set[str]:
        return {ref for value in values.get(name, {}).values() for ref in templates.find_references(value)}

    result: list[tuple[str, str]] = []
    for variable in variables:
        problems: list[str] = []
        where = variable.name
        for label, value in values.get(variable.name, {}).items():
            source = "the code default" if label is None else f"label {label!r}"
            found, errors = templates.find_references_and_errors(value)
            problems.extend(f"{where} ({source}): {error}" for error in errors)
            problems.extend(
                f"{where} ({source}) references @{{{ref}}}@, which is neither on the server nor in code"
                for ref in found
                if ref not in known
            )
        refs = refs_of(variable.name)
        cycle = templates.find_cycle(variable.name, refs, refs_of) if refs else None
        if cycle is not None:
            problems.append(f"{where}: reference cycle {' -> '.join(cycle)}")
        elif refs:
            chain = templates.longest_chain(variable.name, refs_of, templates.MAX_COMPOSITION_DEPTH + 1)
            if len(chain) - 2 > templates.MAX_COMPOSITION_DEPTH:
                problems.append(
                    f"{where}: references nest {len(chain) - 2} levels deep ({' -> '.join(chain)}), more than 20"
                )
        inputs_schema = getattr(variable, "template_inputs_schema", None)
        if inputs_schema is not None:
            problems.extend(
                issue.message()
                for issue in templates.validate_template_fields(
                    variable.name, inputs_schema, lambda n: values.get(n, {})
                )
            )
        result.extend((variable.name, problem) for problem in problems)
    return result


# --- pushing a whole config ---------------------------------------------------------------------------------


def _label_summary(label: Any) -> str:
    if isinstance(label, LabeledValue):
        return _short(label.serialized_value)
    return f"-> {label.ref}"


def _label_key(label: Any) -> tuple[str, str]:
    if isinstance(label, LabeledValue):
        try:
            return ("value", _canonical(json.loads(label.serialized_value)))
        except ValueError:
            return ("value", label.serialized_value)
    return ("ref", label.ref)


def field_changes(local: VariableConfig, server: VariableConfig) -> list[str]:
    """Markup lines, one per field that differs (labels one per label); empty when nothing differs."""
    lines: list[str] = []
    for name in ("description", "json_schema", "type_name", "aliases", "example", "external"):
        old, new = getattr(server, name), getattr(local, name)
        if _canonical(old) != _canonical(new):
            lines.append(f"    [red]- {name}: {escape(_short(old))}[/]")
            lines.append(f"    [green]+ {name}: {escape(_short(new))}[/]")
    for label in sorted(server.labels.keys() | local.labels.keys()):
        old_label, new_label = server.labels.get(label), local.labels.get(label)
        if old_label is None and new_label is not None:
            lines.append(f"    [green]+ label {escape(label)}: {escape(_label_summary(new_label))}[/]")
        elif new_label is None and old_label is not None:
            lines.append(f"    [red]- label {escape(label)}: {escape(_label_summary(old_label))}[/]")
        elif old_label is not None and new_label is not None and _label_key(old_label) != _label_key(new_label):
            lines.append(f"    [red]- label {escape(label)}: {escape(_label_summary(old_label))}[/]")
            lines.append(f"    [green]+ label {escape(label)}: {escape(_label_summary(new_label))}[/]")
    if _canonical(server.rollout.labels) != _canonical(local.rollout.labels):
        lines.append(f"    [red]- rollout: {escape(_short(server.rollout.labels))}[/]")
        lines.append(f"    [green]+ rollout: {escape(_short(local.rollout.labels))}[/]")
    old_overrides = [_canonical(_dump(o)) for o in server.overrides]
    new_overrides = [_canonical(_dump(o)) for o in local.overrides]
    if old_overrides != new_overrides:
        lines.extend(f"    [red]- override #{i + 1}: {escape(_short(o, 160))}[/]" for i, o in enumerate(old_overrides))
        lines.extend(
            f"    [green]+ override #{i + 1}: {escape(_short(o, 160))}[/]" for i, o in enumerate(new_overrides)
        )
        if not new_overrides:
            lines.append("    [green]+ overrides: none[/]")
    return lines


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


@dataclass
class ConfigPlan:
    """What `setpoint.push_config()` would do: variables, and the segments they use."""

    creates: list[str]
    updates: dict[str, list[str]]
    """Variable name -> markup lines of its field changes."""
    deletes: list[str]
    unchanged: list[str]
    local: VariablesConfig
    segment_creates: list[str] = field(default_factory=list)
    segment_updates: list[str] = field(default_factory=list)
    segment_deletes: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Whether anything would be written."""
        return bool(
            self.creates
            or self.updates
            or self.deletes
            or self.segment_creates
            or self.segment_updates
            or self.segment_deletes
        )

    def to_markup(self) -> str:
        """The diff as Rich markup."""
        lines: list[str] = []
        if self.creates:
            lines.append("[bold green]=== Variables to CREATE ===[/]")
            for name in self.creates:
                variable = self.local.variables[name]
                lines.append(f"  [green]+ {escape(name)}[/]")
                if variable.description:
                    lines.append(f"    Description: {escape(variable.description)}")
                for label, target in variable.labels.items():
                    lines.append(f"    [green]+ label {escape(label)}: {escape(_label_summary(target))}[/]")
                if variable.rollout.labels:
                    lines.append(f"    [green]+ rollout: {escape(_short(variable.rollout.labels))}[/]")
        if self.updates:
            lines.append("[bold yellow]=== Variables to UPDATE ===[/]")
            for name, details in self.updates.items():
                lines.append(f"  [yellow]~ {escape(name)}[/]")
                lines.extend(details)
        if self.deletes:
            lines.append("[bold red]=== Variables to DELETE ===[/]")
            lines.extend(f"  [red]- {escape(name)}[/]" for name in self.deletes)
        if self.unchanged:
            lines.append(f"[dim]=== No changes needed ({len(self.unchanged)} variables) ===[/]")
            lines.extend(f"  [dim]  {escape(name)}[/]" for name in self.unchanged)
        if self.segment_creates or self.segment_updates or self.segment_deletes:
            lines.append("[bold]=== Segments ===[/]")
            lines.extend(f"  [green]+ {escape(k)}[/]" for k in self.segment_creates)
            lines.extend(f"  [yellow]~ {escape(k)}[/]" for k in self.segment_updates)
            lines.extend(f"  [red]- {escape(k)}[/]" for k in self.segment_deletes)
        return "\n".join(lines)


def segment_order(segments: dict[str, Segment], keys: Sequence[str]) -> list[str]:
    """``keys`` ordered so that a segment comes after the segments it references (among ``segments``)."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen or key not in segments:
            return
        seen.add(key)
        for child in sorted(segments[key].referenced_segments()):
            visit(child)
        ordered.append(key)

    for key in sorted(keys):
        visit(key)
    wanted = set(keys)
    return [k for k in ordered if k in wanted]


def plan_config(local: VariablesConfig, server: VariablesConfig, mode: Literal["merge", "replace"]) -> ConfigPlan:
    """Compare a config (file) with the server's; ``replace`` also deletes what the file does not have."""
    creates: list[str] = []
    updates: dict[str, list[str]] = {}
    unchanged: list[str] = []
    for name, variable in local.variables.items():
        existing = server.variables.get(name)
        if existing is None:
            creates.append(name)
            continue
        details = field_changes(variable, existing)
        if details:
            updates[name] = details
        else:
            unchanged.append(name)
    deletes = sorted(n for n in server.variables if n not in local.variables) if mode == "replace" else []
    plan = ConfigPlan(creates, updates, deletes, unchanged, local)
    for key, segment in local.segments.items():
        current = server.segments.get(key)
        if current is None:
            plan.segment_creates.append(key)
        elif _canonical(segment.model_dump(mode="json")) != _canonical(current.model_dump(mode="json")):
            plan.segment_updates.append(key)
    if mode == "replace":
        plan.segment_deletes = sorted(k for k in server.segments if k not in local.segments)
    return plan


# --- pushing types --------------------------------------------------------------------------------------------


@dataclass
class TypesPlan:
    """What `setpoint.push_types()` would do."""

    types: list[VariableTypeConfig]
    creates: list[str]
    updates: list[str]
    unchanged: list[str]
    breaking: list[Incompatibility]
    """Values of variables using an updated type that the new schema rejects."""

    @property
    def has_changes(self) -> bool:
        """Whether anything would be written."""
        return bool(self.creates or self.updates)

    def to_markup(self) -> str:
        """The diff as Rich markup."""
        lines = ["[bold]Variable types push summary[/]"]
        if self.creates:
            lines.append(f"[bold green]New types ({len(self.creates)}):[/]")
            lines.extend(f"  [green]+ {escape(n)}[/]" for n in self.creates)
        if self.updates:
            lines.append(f"[bold yellow]Schema updates ({len(self.updates)}):[/]")
            lines.extend(f"  [yellow]~ {escape(n)}[/]" for n in self.updates)
        if self.unchanged:
            lines.append(f"[dim]Unchanged ({len(self.unchanged)}):[/]")
            lines.extend(f"  [dim]= {escape(n)}[/]" for n in self.unchanged)
        if self.breaking:
            lines.append("[bold red]=== Values the new schemas would reject ===[/]")
            for item in self.breaking:
                version = "" if item.version is None else f" (version {item.version})"
                where = f"{escape(item.variable)}, label {escape(item.label)}{version}"
                lines.append(f"  [red]⚠ {where}: {escape(item.error)}[/]")
        return "\n".join(lines)


def type_name_of(tp: Any) -> str:
    """The default name of a type: its ``__name__``."""
    return str(getattr(tp, "__name__", None) or repr(tp))


def plan_types(types: Sequence[Any], server_types: dict[str, VariableTypeConfig], server: VariablesConfig) -> TypesPlan:
    """Compare types in code (a type, or ``(type, name)``) with the server's types."""
    configs: list[VariableTypeConfig] = []
    creates: list[str] = []
    updates: list[str] = []
    unchanged: list[str] = []
    breaking: list[Incompatibility] = []
    for item in types:
        tp, name = item if isinstance(item, tuple) else (item, type_name_of(item))
        adapter: TypeAdapter[Any] = TypeAdapter(tp)
        module, qualname = getattr(tp, "__module__", None), getattr(tp, "__qualname__", None)
        hint = f"{module}.{qualname}" if module and qualname else None
        config = VariableTypeConfig(name=name, json_schema=adapter.json_schema(), source_hint=hint)
        configs.append(config)
        existing = server_types.get(name)
        if existing is None:
            creates.append(name)
        elif _canonical(existing.json_schema) != _canonical(config.json_schema):
            updates.append(name)
            for variable in server.variables.values():
                if variable.type_name == name:
                    breaking.extend(incompatible_values(adapter, variable))
        else:
            unchanged.append(name)
    return TypesPlan(configs, creates, updates, unchanged, breaking)
