"""The pure templates/composition core, checked value by value against the Logfire SDK's own functions (the
reference implementation) and on the reference-graph helpers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from logfire.variables.abstract import render_serialized_string
from logfire.variables.composition import expand_references

from setpoint._core import templates
from setpoint.exceptions import CompositionCycleError, CompositionError

STORE = {
    "s": json.dumps("plain"),
    "obj": json.dumps({"name": "Ada", "tags": ["x", "y"], "on": True, "n": 0}),
    "lst": json.dumps(["a", "b"]),
    "num": json.dumps(3.5),
    "empty": json.dumps(""),
    "nested": json.dumps("N[@{s}@]"),
    "uni": json.dumps("héllo ✓"),
    "html": json.dumps('<b>"q"</b> & co'),
    "tpl": json.dumps("Hi {{user}}"),
}

VALUES = [
    "@{s}@",
    "a @{obj.name}@ b",
    "@{#if obj.on}@yes@{else}@no@{/if}@",
    "@{#if empty}@yes@{else}@no@{/if}@",
    "@{#each lst}@<@{this}@>@{/each}@",
    "@{#each obj.tags}@@{this}@@{../s}@;@{/each}@",
    "@{num}@ @{obj}@ @{lst}@",
    "top @{nested}@",
    "@{uni}@ @{html}@",
    "@{tpl}@ and {{kept}}",
    "\\\\@{s}@ escaped",
    "no references {{at_all}}",
]


def _resolver(name: str) -> templates.RefResolution:
    value = STORE.get(name)
    return templates.RefResolution(value, "prod" if value else None, 1 if value else None, "resolved")


def _logfire_resolver(name: str) -> tuple[str | None, str | None, int | None, Any]:
    value = STORE.get(name)
    return value, "prod" if value else None, 1 if value else None, "resolved"


def _shape(refs: Any) -> list[Any]:
    return [(r.name, r.value, r.label, r.version, r.reason, r.error, _shape(r.composed_from)) for r in refs]


@pytest.mark.parametrize("text", VALUES)
@pytest.mark.parametrize("wrap", ["string", "object"])
def test_compose_matches_the_logfire_sdk(text: str, wrap: str) -> None:
    value: Any = text if wrap == "string" else {"a": text, "b": [text, 1, None], "c": False}
    serialized = json.dumps(value)
    ours, our_refs = templates.compose(serialized, "root", _resolver, strict=True)
    theirs, their_refs = expand_references(serialized, "root", _logfire_resolver, strict=True)
    assert json.loads(ours) == json.loads(theirs)
    assert _shape(our_refs) == _shape(their_refs)


@pytest.mark.parametrize(
    "text", ["Hi {{user}}", "{{#each items}}[{{this}}]{{/each}}", "{{#if flag}}Y{{else}}N{{/if}} {{html}}", "plain"]
)
def test_render_matches_the_logfire_sdk(text: str) -> None:
    context = {"user": "Ada", "items": ["a", "b"], "flag": True, "html": '<i>"x"</i> & y'}
    serialized = json.dumps({"t": text, "n": 1})
    assert json.loads(templates.render(serialized, context)) == json.loads(
        render_serialized_string(serialized, context)
    )


def test_strict_composition_refuses_a_missing_reference_and_lenient_renders_it_empty() -> None:
    with pytest.raises(CompositionError, match="missing"):
        templates.compose(json.dumps("x @{missing}@ y"), "root", _resolver, strict=True)
    lenient, refs = templates.compose(json.dumps("x @{missing}@ y"), "root", _resolver, strict=False)
    assert json.loads(lenient) == "x  y"
    assert refs[0].error is not None and refs[0].value is None


def test_cycles_and_depth_are_fatal_below_the_root_and_raise_at_it() -> None:
    def cyclic(name: str) -> templates.RefResolution:
        return templates.RefResolution(json.dumps({"a": "@{b}@", "b": "@{a}@"}[name]))

    value, refs = templates.compose(json.dumps("@{b}@"), "a", cyclic, strict=True)
    assert value == json.dumps("@{b}@")  # left unrendered
    assert templates.first_fatal_error(refs) == "circular reference: a -> b -> a"
    with pytest.raises(CompositionCycleError):
        templates.compose(json.dumps("x"), "a", cyclic, strict=True, _chain=("a",))


def test_reference_discovery_parse_errors_and_template_fields() -> None:
    serialized = json.dumps({"x": "@{a}@ @{#if b.c}@@{/if}@", "y": ["@{lookup d e}@"], "z": "{{f}}"})
    assert templates.find_references(serialized) == ["a", "b", "d", "e"]
    names, errors = templates.find_references_and_errors(json.dumps(["@{#if x}@ unclosed", "@{ok}@"]))
    assert names == ["ok"] and len(errors) == 1
    schema = {"type": "object", "properties": {"f": {"type": "string"}}}
    assert templates.undeclared_fields(json.dumps("{{f}} {{g}} {{#if h}}{{/if}}"), schema) == ["g", "h"]


def test_graph_helpers() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert templates.find_cycle("c", {"d"}, lambda n: graph.get(n, set())) == ["c", "d", "a", "b", "c"]
    assert templates.find_cycle("c", {"x"}, lambda n: graph.get(n, set())) is None
    assert templates.longest_chain("d", lambda n: graph.get(n, set()), 20) == ["d", "a", "b", "c"]
    issues = templates.validate_template_fields(
        "d",
        {"type": "object", "properties": {"ok": {}}},
        lambda n: {"latest": json.dumps({"d": "@{a}@", "a": "@{b}@ {{ok}}", "b": "{{bad}}"}.get(n, "x"))},
    )
    assert [(i.field_name, i.found_in_variable, i.reference_path) for i in issues] == [("bad", "b", ("a", "b"))]
