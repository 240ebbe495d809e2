"""After a change, only what it touches is compiled again: counted, not timed.

A segment change recompiles that segment, the segments that reference it (directly or through others), and
the variables that name any of these; every other segment predicate and variable is the very same object.
"""

from __future__ import annotations

import json
from typing import Any

from setpoint._core.evaluator import CompiledConfig, affected_segments, compile_config
from setpoint._remote.lkg import apply_delta, load_response
from setpoint.config import VariablesConfig


def matching(*keys: str) -> dict[str, Any]:
    return {"clauses": [{"attribute": "key", "op": "segmentMatch", "values": list(keys)}]}


def segments(a_included: str = "u1") -> dict[str, Any]:
    """a <- b <- d (b contains a's members, d contains b's), and c on its own."""
    return {
        "a": {"key": "a", "name": "A", "included": [a_included]},
        "b": {"key": "b", "name": "B", "rules": [matching("a")]},
        "c": {"key": "c", "name": "C", "included": ["u3"]},
        "d": {"key": "d", "name": "D", "rules": [matching("b")]},
    }


def variable(name: str, kind: str | None = None, segment: str | None = None, value: int = 0) -> dict[str, Any]:
    overrides = []
    if segment is not None:
        overrides = [{"conditions": [{"kind": kind, "segment": segment}], "rollout": {"labels": {"hit": 1.0}}}]
    return {
        "name": name,
        "labels": {
            "hit": {"version": 1, "serialized_value": json.dumps("hit")},
            "main": {"version": 2, "serialized_value": json.dumps(value)},
        },
        "rollout": {"labels": {"main": 1.0}},
        "overrides": overrides,
    }


def config_data(a_included: str = "u1", plain: int = 50) -> dict[str, Any]:
    variables = {
        "va": variable("va", "in-segment", "a"),
        "vb": variable("vb", "in-segment", "b"),
        "vc": variable("vc", "in-segment", "c"),
        "vd": variable("vd", "not-in-segment", "d"),
    }
    variables.update({f"p{i}": variable(f"p{i}", value=i) for i in range(plain)})
    return {"variables": variables, "segments": segments(a_included)}


def label(compiled: CompiledConfig, name: str, key: str) -> str | None:
    return compiled.evaluate(name, key).label


def test_affected_segments_follow_references_transitively() -> None:
    models = VariablesConfig.model_validate(config_data()).segments
    assert affected_segments(models, ["a"]) == {"a", "b", "d"}
    assert affected_segments(models, ["b"]) == {"b", "d"}
    assert affected_segments(models, ["c"]) == {"c"}
    assert affected_segments(models, ["d"]) == {"d"}


def test_updated_recompiles_only_what_names_the_changed_segment() -> None:
    old = compile_config(VariablesConfig.model_validate(config_data()))
    assert [label(old, n, "u1") for n in ("va", "vb", "vd")] == ["hit", "hit", "main"]

    changed_c = VariablesConfig.model_validate({**config_data(), "segments": {**segments(), "c": segments()["c"]}})
    new = old.updated(changed_c, [], ["c"])
    assert new.recompiled == 1  # vc only
    assert (
        all(new.segments[k] is old.segments[k] for k in ("a", "b", "d")) and new.segments["c"] is not old.segments["c"]
    )
    for name in ("va", "vb", "vd", "p0", "p49"):
        assert new.get(name) is old.get(name)
    assert new.get("vc") is not old.get("vc")

    moved = VariablesConfig.model_validate(config_data(a_included="u2"))
    new = old.updated(moved, [], ["a"])
    assert new.recompiled == 3  # va, and vb and vd through b and d
    assert new.segments["c"] is old.segments["c"]
    assert new.get("vc") is old.get("vc") and new.get("p7") is old.get("p7")
    assert [label(new, n, "u1") for n in ("va", "vb", "vd")] == ["main", "main", "hit"]
    assert [label(new, n, "u2") for n in ("va", "vb", "vd")] == ["hit", "hit", "main"]
    fresh = compile_config(moved)
    for name in fresh.names():
        for key in ("u1", "u2", "u3", "other"):
            assert new.evaluate(name, key) == fresh.evaluate(name, key)


def test_a_delta_recompiles_only_what_it_touches() -> None:
    old = load_response(None, config_data()).compiled
    before = {name: old.get(name) for name in old.names()}  # compiled now, to compare identities below

    one = apply_delta(old, {"delta": {}, "variables": {"p3": variable("p3", value=33)}})
    assert one.compiled.recompiled == 1 and not one.full
    assert one.compiled.evaluate("p3", "k").serialized_value == "33"
    assert all(one.compiled.get(n) is before[n] for n in before if n != "p3")

    segment = apply_delta(
        old, {"delta": {}, "variables": {}, "segments": {"a": segments(a_included="u2")["a"]}}
    ).compiled
    assert segment.recompiled == 3
    assert {n for n in before if segment.get(n) is not before[n]} == {"va", "vb", "vd"}
    assert [label(segment, n, "u2") for n in ("va", "vb", "vd")] == ["hit", "hit", "main"]

    removed = apply_delta(old, {"delta": {}, "variables": {}, "removed": ["p1"]}).compiled
    assert removed.recompiled == 0 and "p1" not in removed.names() and removed.get("p2") is before["p2"]


def test_variables_compiled_again_keep_their_place() -> None:
    old = load_response(None, config_data()).compiled
    one = apply_delta(old, {"delta": {}, "variables": {"p3": variable("p3", value=33)}}).compiled
    assert one.names() == old.names()
    segment = apply_delta(old, {"delta": {}, "variables": {}, "segments": {"a": segments("u2")["a"]}}).compiled
    assert segment.names() == old.names()
    added = apply_delta(old, {"delta": {}, "variables": {"new": variable("new")}, "removed": ["p1"]}).compiled
    assert added.names() == [n for n in old.names() if n != "p1"] + ["new"]
