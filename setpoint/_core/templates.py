"""Templates and composition: ``@{reference}@`` expansion and ``{{field}}`` rendering. Pure, no I/O.

One implementation serves the SDK (`Variable.get`, `TemplateVariable.get`), the server (``/v1/resolve/``,
OFREP, the simulator) and write-time validation, so a value composes and renders the same everywhere. The
semantics follow logfire-sdk 5.4 so that both SDKs produce identical values from one served config:

* **compose**: every string inside a JSON value that contains ``@{`` is a Handlebars template with the
  delimiters ``@{`` / ``}@``; its context maps each referenced variable name to that variable's decoded value,
  itself composed first (depth <= `MAX_COMPOSITION_DEPTH`; a cycle is an error). ``{{...}}`` is left alone.
  Strict composition (stored values) makes an unresolved reference an error; lenient composition (the code
  default, the last resort) renders it empty.
* **render**: every string containing ``{{`` is rendered with the template inputs (strings are not HTML-escaped).

Rendering is bounded by pydantic-handlebars (nesting depth and output size), and compiled templates are cached
by source, so a value is parsed once however often it is served.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Literal

from pydantic_handlebars import (
    CompiledTemplate,
    HandlebarsEnvironment,
    HandlebarsError,
    SafeString,
    check_template_compatibility,
    extract_dependencies,
)

from setpoint.exceptions import CompositionCycleError, CompositionDepthError, CompositionError

__all__ = [
    "MAX_COMPOSITION_DEPTH",
    "ComposedReference",
    "RefResolution",
    "TemplateFieldIssue",
    "compose",
    "find_cycle",
    "find_references",
    "find_references_and_errors",
    "first_fatal_error",
    "has_references",
    "has_template",
    "inputs_context",
    "longest_chain",
    "render",
    "template_strings",
    "undeclared_fields",
    "validate_template_fields",
]

MAX_COMPOSITION_DEPTH = 20
"""How deep ``@{a}@`` -> ``@{b}@`` -> ... may nest (as in the Logfire SDK)."""

OPEN = "@{"
CLOSE = "}@"

ComposeReason = Literal["resolved", "context_override", "code_default", "validation_error", "other_error"]


@dataclass(frozen=True, slots=True)
class RefResolution:
    """What a referenced variable resolves to: its JSON value (None: no value) and where it came from."""

    serialized_value: str | None
    label: str | None = None
    version: int | None = None
    reason: ComposeReason = "resolved"


RefResolver = Callable[[str], RefResolution]
"""``resolver(name)``: resolves one referenced variable (same targeting key and attributes as the root)."""


@dataclass(frozen=True, slots=True)
class ComposedReference:
    """One ``@{reference}@`` expanded while resolving a value (nested ones in ``composed_from``)."""

    name: str
    """The referenced variable."""
    value: str | None
    """The text spliced in (a JSON dump for a non-string value); None when it could not be expanded."""
    label: str | None
    version: int | None
    reason: ComposeReason
    """How the referenced variable was resolved."""
    error: str | None = None
    """Why it could not be expanded, if it could not."""
    composed_from: tuple[ComposedReference, ...] = field(default=())
    """The references expanded inside this one."""
    fatal: bool = False
    """True for a cycle or a too-deep chain: the whole value cannot be composed."""

    def to_json(self) -> dict[str, Any]:
        """The form recorded on spans and returned by the server (the Logfire SDK's span attribute shape)."""
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "label": self.label,
            "reason": self.reason,
            "error": self.error,
        }
        if self.composed_from:
            data["composed_from"] = [ref.to_json() for ref in self.composed_from]
        return data


def has_references(text: str) -> bool:
    """Whether ``text`` may contain composition syntax (cheap gate; escapes are decided by the renderer)."""
    return OPEN in text


def has_template(text: str) -> bool:
    """Whether ``text`` may contain ``{{...}}`` template syntax."""
    return "{{" in text


# --- compiled-template caches ----------------------------------------------------------------------------


@cache
def _composition_environment(strict: bool) -> HandlebarsEnvironment:
    return HandlebarsEnvironment(open_delim=OPEN, close_delim=CLOSE, strict=strict)


@cache
def _render_environment() -> HandlebarsEnvironment:
    return HandlebarsEnvironment()


@lru_cache(maxsize=1024)
def _composition_template(source: str, strict: bool) -> CompiledTemplate:
    return _composition_environment(strict).compile(source)


@lru_cache(maxsize=1024)
def _render_template(source: str) -> CompiledTemplate:
    return _render_environment().compile(source)


@lru_cache(maxsize=1024)
def _dependencies(source: str) -> frozenset[str]:
    return frozenset(extract_dependencies(source, open_delim=OPEN, close_delim=CLOSE))


# --- references ----------------------------------------------------------------------------------------


def _load(serialized: str) -> Any:
    try:
        return json.loads(serialized)
    except (ValueError, TypeError):
        return None


def _walk_references(value: Any) -> tuple[set[str], list[str]]:
    """(names referenced, parse errors) of every string in a decoded JSON value; iterative, never raises."""
    names: set[str] = set()
    errors: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if OPEN in item:
                try:
                    names.update(_dependencies(item))
                except Exception as exc:  # HandlebarsError, or AssertionError for a reserved name like @{true}@
                    errors.append(f"{item!r} is not a valid composition template: {exc}")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names, errors


def find_references(serialized: str) -> list[str]:
    """The variables a JSON value references with ``@{name}@`` (sorted, unique); unparsable strings are skipped."""
    return sorted(_walk_references(_load(serialized))[0])


def find_references_and_errors(serialized: str) -> tuple[list[str], list[str]]:
    """`find_references`, plus one message per string whose ``@{...}@`` syntax does not parse."""
    names, errors = _walk_references(_load(serialized))
    return sorted(names), errors


# --- compose -------------------------------------------------------------------------------------------


def compose(
    serialized: str,
    name: str,
    resolver: RefResolver,
    *,
    strict: bool,
    _chain: tuple[str, ...] = (),
) -> tuple[str, tuple[ComposedReference, ...]]:
    """Expand the ``@{references}@`` in the JSON value ``serialized`` of variable ``name``.

    Returns the composed JSON value and the expansions made. Raises `CompositionCycleError` when ``name`` is
    already being expanded, `CompositionDepthError` beyond `MAX_COMPOSITION_DEPTH`, and (``strict`` only, or
    for a template that does not parse) `CompositionError` naming the unresolved reference. A cycle or depth
    overflow *below* a reference is reported in that reference (``fatal=True``) and the value is returned
    unrendered; `first_fatal_error` finds it.

    Parsing, the reference list and the rendering are cached by their inputs (the value and the values its
    references resolved to), so serving the same composition again costs the reference lookups only.
    """
    if len(_chain) > MAX_COMPOSITION_DEPTH:
        raise CompositionDepthError(
            f"composition of {name!r} is deeper than {MAX_COMPOSITION_DEPTH} references: {' -> '.join(_chain)}"
        )
    if name in _chain:
        raise CompositionCycleError(f"circular reference: {' -> '.join((*_chain, name))}")
    is_json, refs = _plan(serialized)
    if not is_json:
        return serialized, ()
    chain = (*_chain, name)
    expanded: list[ComposedReference] = []
    context: list[tuple[str, str]] = []
    for ref in refs:
        found = resolver(ref)
        ref_serialized = found.serialized_value
        if ref_serialized is None:
            expanded.append(_failed(ref, found, f"referenced variable {ref!r} could not be resolved"))
            continue
        text = _spliced_text(ref_serialized)
        if text is None:
            expanded.append(_failed(ref, found, f"referenced variable {ref!r} has a value that is not JSON"))
            continue
        nested: tuple[ComposedReference, ...] = ()
        if OPEN in ref_serialized:
            try:
                ref_serialized, nested = compose(ref_serialized, ref, resolver, strict=strict, _chain=chain)
            except (CompositionCycleError, CompositionDepthError) as exc:
                expanded.append(_failed(ref, found, str(exc), fatal=True))
                continue
            text = _spliced_text(ref_serialized)
        expanded.append(ComposedReference(ref, text, found.label, found.version, found.reason, composed_from=nested))
        context.append((ref, ref_serialized))
    if first_fatal_error(expanded) is not None:
        return serialized, tuple(expanded)
    try:
        rendered = _rendered(serialized, strict, tuple(context))
    except (HandlebarsError, AssertionError, RecursionError) as exc:
        error = CompositionError(f"composing {name!r} failed: {exc}")
        error.composed_from = tuple(expanded)
        raise error from exc
    return rendered, tuple(expanded)


@lru_cache(maxsize=1024)
def _plan(serialized: str) -> tuple[bool, tuple[str, ...]]:
    """(whether the value is JSON, the sorted names it references)."""
    decoded = _load(serialized)
    if decoded is None and serialized.strip() != "null":
        return False, ()
    return True, tuple(sorted(_walk_references(decoded)[0]))


@lru_cache(maxsize=1024)
def _spliced_text(serialized: str) -> str | None:
    """What a reference to a value records as its text: the string itself, else its JSON; None if not JSON."""
    try:
        value = json.loads(serialized)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, str) else json.dumps(value)


@lru_cache(maxsize=1024)
def _rendered(serialized: str, strict: bool, context: tuple[tuple[str, str], ...]) -> str:
    values = {ref: json.loads(ref_serialized) for ref, ref_serialized in context}
    return json.dumps(_compose_value(json.loads(serialized), values, strict), ensure_ascii=False)


def _failed(ref: str, found: RefResolution, error: str, *, fatal: bool = False) -> ComposedReference:
    return ComposedReference(ref, None, found.label, found.version, found.reason, error=error, fatal=fatal)


def _compose_value(value: Any, context: dict[str, Any], strict: bool) -> Any:
    if isinstance(value, str):
        if OPEN not in value:
            return value
        return _composition_template(value, strict).render(context)
    if isinstance(value, dict):
        return {key: _compose_value(item, context, strict) for key, item in value.items()}
    if isinstance(value, list):
        return [_compose_value(item, context, strict) for item in value]
    return value


def first_fatal_error(expanded: Iterable[ComposedReference]) -> str | None:
    """The first cycle / depth error anywhere in ``expanded`` (nested included), else None."""
    for ref in expanded:
        if ref.fatal and ref.error is not None:
            return ref.error
        nested = first_fatal_error(ref.composed_from)
        if nested is not None:
            return nested
    return None


# --- render --------------------------------------------------------------------------------------------


def inputs_context(inputs: Any) -> dict[str, Any]:
    """Template inputs as a rendering context: a pydantic model, a mapping, or anything pydantic can dump to a
    mapping (dataclass, TypedDict...); None is an empty context. Raises `TypeError` otherwise."""
    if inputs is None:
        return {}
    dump = getattr(inputs, "model_dump", None)
    if callable(dump):
        dumped = dump()
    elif isinstance(inputs, Mapping):
        dumped = dict(inputs)
    else:
        from pydantic_core import to_jsonable_python

        try:
            dumped = to_jsonable_python(inputs)
        except Exception as exc:
            raise TypeError(
                f"template inputs of type {type(inputs).__name__!r} cannot be turned into a mapping; pass a "
                "pydantic model, a dataclass, a TypedDict or a dict"
            ) from exc
    if not isinstance(dumped, dict):
        raise TypeError(f"template inputs of type {type(inputs).__name__!r} are not a mapping")
    return dumped


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return SafeString(value)
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_safe(item) for item in value]
    return value


def render(serialized: str, context: Mapping[str, Any]) -> str:
    """Render the ``{{fields}}`` of every string in the JSON value ``serialized`` with ``context`` (no HTML
    escaping; a missing field renders empty). Raises `HandlebarsError` for a template that does not parse."""
    safe = {key: _safe(item) for key, item in context.items()}
    return json.dumps(_render_value(_decoded(serialized), safe))


@lru_cache(maxsize=1024)
def _decoded(serialized: str) -> Any:
    """The decoded JSON value (cached: the renderer only reads it)."""
    return json.loads(serialized)


def _render_value(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if "{{" not in value:
            return value
        return _render_template(value).render(context)
    if isinstance(value, dict):
        return {key: _render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, context) for item in value]
    return value


# --- template fields against an inputs schema -----------------------------------------------------------


def template_strings(serialized: str) -> list[str]:
    """Every string in the JSON value ``serialized`` that contains ``{{`` (the raw text if it is not JSON)."""
    decoded = _load(serialized)
    if decoded is None:
        return [serialized] if "{{" in serialized else []
    found: list[str] = []
    stack = [decoded]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "{{" in item:
                found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


def undeclared_fields(serialized: str, schema: Mapping[str, Any]) -> list[str]:
    """The ``{{fields}}`` of ``serialized`` that ``schema`` (a JSON schema of the inputs) does not declare
    (unique, in order). Raises `HandlebarsError` for a template that does not parse."""
    templates = template_strings(serialized)
    if not templates:
        return []
    result = check_template_compatibility(templates, dict(schema))
    return list(dict.fromkeys(issue.field_path for issue in result.issues if issue.severity == "error"))


@dataclass(frozen=True, slots=True)
class TemplateFieldIssue:
    """A ``{{field}}`` that a template variable's inputs schema does not declare."""

    field_name: str
    found_in_variable: str
    """The variable whose value contains the field (the root itself, or a variable it composes)."""
    found_in_label: str | None
    """The label of that value (``latest`` for the latest version, None for a value given directly)."""
    reference_path: tuple[str, ...]
    """The references followed from the root to ``found_in_variable``."""
    root_variable: str

    def message(self) -> str:
        """A sentence naming the field, where it is and what to do."""
        where = f"variable {self.found_in_variable!r}"
        if self.found_in_label is not None:
            where += f" (label {self.found_in_label!r})"
        if self.reference_path:
            where += f", reached from {self.root_variable!r} through " + " -> ".join(self.reference_path)
        return (
            f"template field {{{{{self.field_name}}}}} in {where} is not declared in the template_inputs_schema "
            f"of {self.root_variable!r}; add it to the inputs type or remove it from the template"
        )


def validate_template_fields(
    name: str, schema: Mapping[str, Any], values_of: Callable[[str], Mapping[str | None, str]]
) -> list[TemplateFieldIssue]:
    """Check every ``{{field}}`` reachable from template variable ``name`` (its values and, through
    ``@{references}@``, theirs) against its inputs ``schema``. ``values_of(variable)`` gives
    ``{label or None: serialized value}``. A template that does not parse is reported as field ``<syntax>``."""
    issues: list[TemplateFieldIssue] = []
    seen: set[tuple[str, str, str | None]] = set()
    stack: list[tuple[str, tuple[str, ...], frozenset[str]]] = [(name, (), frozenset())]
    while stack:
        current, path, visited = stack.pop()
        if current in visited or len(path) > MAX_COMPOSITION_DEPTH:
            continue
        visited = visited | {current}
        refs: set[str] = set()
        for label, serialized in values_of(current).items():
            try:
                fields = undeclared_fields(serialized, schema)
            except Exception as exc:
                fields = [f"<syntax: {exc}>"]
            for field_name in fields:
                key = (field_name, current, label)
                if key not in seen:
                    seen.add(key)
                    issues.append(TemplateFieldIssue(field_name, current, label, path, name))
            refs.update(find_references(serialized))
        for ref in sorted(refs, reverse=True):
            stack.append((ref, (*path, ref), visited))
    return issues


# --- the reference graph -------------------------------------------------------------------------------


def find_cycle(name: str, references: Iterable[str], references_of: Callable[[str], Iterable[str]]) -> list[str] | None:
    """The cycle (``[name, ..., name]``) that giving ``name`` these direct ``references`` would close, else None.
    ``references_of(variable)`` gives the names another variable references (any of its values)."""
    for start in sorted(set(references)):
        stack: list[tuple[str, list[str]]] = [(start, [name, start])]
        visited: set[str] = set()
        while stack:
            current, path = stack.pop()
            if current == name:
                return path
            if current in visited:
                continue
            visited.add(current)
            for ref in sorted(set(references_of(current)), reverse=True):
                stack.append((ref, [*path, ref]))
    return None


def longest_chain(name: str, references_of: Callable[[str], Iterable[str]], limit: int) -> list[str]:
    """The longest acyclic reference chain starting at ``name`` (``[name, ...]``), explored up to ``limit + 1``
    variables deep (enough to tell a chain that is too deep)."""
    best: list[str] = [name]
    memo: dict[str, list[str]] = {}

    def walk(current: str, on_path: frozenset[str], depth: int) -> list[str]:
        if current in memo:
            return memo[current]
        longest: list[str] = [current]
        if depth <= limit:
            for ref in sorted(set(references_of(current))):
                if ref in on_path:
                    continue
                below = walk(ref, on_path | {ref}, depth + 1)
                if len(below) + 1 > len(longest):
                    longest = [current, *below]
        memo[current] = longest
        return longest

    best = walk(name, frozenset({name}), 0)
    return best
