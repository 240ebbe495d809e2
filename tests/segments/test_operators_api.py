"""Every operator of seed 003's table, written through the segments API and evaluated from the served config:
matches, non-matches, type mismatches (a number never equals a string), ``negate``, context kinds, and values
that are rejected when written (400 naming the clause)."""

from __future__ import annotations

from typing import Any

import pytest

from setpoint._core.evaluator import compile_config
from setpoint.config import SEGMENT_OPS
from tests.segments.support import App, ld_create, ld_patch, served_config
from tests.server.support import Project

_MISSING: Any = object()

# op, values, attribute values that match, attribute values that do not (the attribute is "a")
OPERATOR_CASES: list[tuple[str, list[Any], list[Any], list[Any]]] = [
    ("in", ["gold", 7, True], ["gold", 7, 7.0, True], ["Gold", "7", 1, False, None, _MISSING]),
    ("startsWith", ["ab"], ["abc", "ab"], ["xab", 123, None, ["x"], _MISSING]),
    ("endsWith", ["@company.com"], ["a@company.com"], ["a@company.co", "@company.com.evil", 5, _MISSING]),
    ("contains", ["mid"], ["amidst", ["x", "mid"]], ["m-i-d", 1, True, _MISSING]),
    ("matches", [r"^v\d+$"], ["v12"], ["v1x", "xv1", 12, _MISSING]),
    ("greaterThan", [30], [31, 30.5], [30, 29, "31", True, None, _MISSING]),
    ("greaterThanOrEqual", [30], [30, 30.0, 99], [29.99, "30", False, _MISSING]),
    ("lessThan", [10], [9.5, -1], [10, 11, "9", _MISSING]),
    ("lessThanOrEqual", [10], [10, 0], [10.01, "10", _MISSING]),
    (
        "before",
        [1704067200000],
        [1704067199999, "2023-12-31T23:59:59Z", "2023-12-31T23:59:59.999+00:00"],
        [1704067200000, "2024-02-01T00:00:00Z", "2023-06-01", "2023-06-01T00:00:00", "not a date", True, _MISSING],
    ),
    (
        "after",
        ["2024-01-01T00:00:00Z"],
        [1704067200001, "2024-01-01T00:00:01+00:00", "2024-01-01T00:00:00.001z", "2024-01-01T01:00:00+00:59"],
        [1704067200000, "2025-01-01", " 2025-01-01T00:00:00Z", "2025-W01-1T00:00:00Z", False, _MISSING],
    ),
    (
        "semVerEqual",
        ["2.0.0"],
        ["2.0.0", "2.0", "2", "2.0.0+build.7"],
        ["2.0.1", "2.0.0-rc.1", 2, "two", "v2.0.0", " 2.0.0", "2.0.0 ", "02.0.0", "2.0.0.0", _MISSING],
    ),
    ("semVerLessThan", ["2.0.0"], ["1.9.9", "2.0.0-beta.1", "1", "2-rc.1"], ["2.0.0", "10.0.0", 1, "v1.0.0", _MISSING]),
    ("semVerGreaterThan", ["2.0.0"], ["2.0.1", "10.0.0", "3"], ["2.0.0", "1.99.99", "2.0.1x", _MISSING]),
]


def _member(app: App, project: Project, segment: str, key: str | None, attributes: dict[str, Any]) -> bool:
    compiled = compile_config(served_config(app, project))
    return compiled.segments[segment](key, attributes)


def _context(value: Any) -> dict[str, Any]:
    return {} if value is _MISSING else {"a": value}


def test_the_table_covers_every_operator() -> None:
    assert {case[0] for case in OPERATOR_CASES} | {"segmentMatch"} == set(SEGMENT_OPS)


@pytest.mark.parametrize(("op", "values", "matching", "other"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operator_through_the_api(
    app: App, project: Project, op: str, values: list[Any], matching: list[Any], other: list[Any]
) -> None:
    for negate in (False, True):
        key = f"seg-{op.lower()}-{'neg' if negate else 'pos'}"
        assert ld_create(app, project, key).status_code == 201
        clause = {"attribute": "a", "op": op, "values": values, "contextKind": "user", "negate": negate}
        response = ld_patch(app, project, key, [{"kind": "addRule", "clauses": [clause]}])
        assert response.status_code == 200, response.text
        assert response.json()["rules"][0]["clauses"] == [clause]
        compiled = compile_config(served_config(app, project))
        member = compiled.segments[key]
        for value in matching:
            assert member("k", _context(value)) is not negate, (op, negate, value)
        for value in other:
            # A missing or null attribute never matches, negated or not (LaunchDarkly's rule).
            absent = value is None or value is _MISSING
            assert member("k", _context(value)) is (negate and not absent), (op, negate, value)


def test_segment_match_and_its_negation(app: App, project: Project) -> None:
    assert ld_create(app, project, "staff", included=["alice"]).status_code == 201
    assert ld_create(app, project, "via-staff").status_code == 201
    assert ld_create(app, project, "not-staff").status_code == 201
    match = {"attribute": "segmentMatch", "op": "segmentMatch", "values": ["staff"]}
    assert ld_patch(app, project, "via-staff", [{"kind": "addRule", "clauses": [match]}]).status_code == 200
    negated = {**match, "negate": True}
    assert ld_patch(app, project, "not-staff", [{"kind": "addRule", "clauses": [negated]}]).status_code == 200
    assert _member(app, project, "via-staff", "alice", {}) is True
    assert _member(app, project, "via-staff", "bob", {}) is False
    assert _member(app, project, "not-staff", "alice", {}) is False
    assert _member(app, project, "not-staff", "bob", {}) is True


def test_context_kinds_read_dotted_attributes_and_kind_keys(app: App, project: Project) -> None:
    assert ld_create(app, project, "new-devices").status_code == 201
    rules = [
        {"kind": "addRule", "clauses": [{"attribute": "version", "op": "semVerGreaterThan", "values": ["2.0.0"],
                                         "contextKind": "device"}]},
        {"kind": "addRule", "clauses": [{"attribute": "key", "op": "in", "values": ["org-1"],
                                         "contextKind": "organization"}]},
        {"kind": "addRule", "clauses": [{"attribute": "key", "op": "startsWith", "values": ["vip-"]}]},
    ]  # fmt: skip
    assert ld_patch(app, project, "new-devices", rules).status_code == 200
    assert _member(app, project, "new-devices", "u", {"device.version": "2.1.0"}) is True
    assert _member(app, project, "new-devices", "u", {"version": "2.1.0"}) is False  # a user attribute
    assert _member(app, project, "new-devices", "u", {"organization.key": "org-1"}) is True
    assert _member(app, project, "new-devices", "vip-7", {}) is True  # user `key` is the targeting key
    assert _member(app, project, "new-devices", "u", {"key": "vip-7"}) is False


def test_targets_of_other_context_kinds_and_inclusion_first(app: App, project: Project) -> None:
    assert ld_create(app, project, "orgs").status_code == 201
    instructions: list[dict[str, Any]] = [
        {"kind": "addIncludedTargets", "contextKind": "organization", "values": ["o1", "o2"]},
        {"kind": "addExcludedTargets", "contextKind": "organization", "values": ["o2"]},
        {"kind": "addRule", "clauses": [{"attribute": "tier", "op": "in", "values": ["gold"]}]},
        {"kind": "addExcludedTargets", "contextKind": "user", "values": ["banned"]},
    ]
    body = ld_patch(app, project, "orgs", instructions).json()
    assert body["includedContexts"] == [{"contextKind": "organization", "values": ["o1", "o2"]}]
    assert body["excludedContexts"] == [{"contextKind": "organization", "values": ["o2"]}]
    assert body["excluded"] == ["banned"]
    assert _member(app, project, "orgs", "u", {"organization.key": "o1"}) is True
    # o2 is both included and excluded: included is checked first, as in LaunchDarkly
    assert _member(app, project, "orgs", "u", {"organization.key": "o2", "tier": "silver"}) is True
    assert _member(app, project, "orgs", "banned", {"organization.key": "o3", "tier": "gold"}) is False
    assert _member(app, project, "orgs", "u", {"tier": "gold"}) is True
    assert _member(app, project, "orgs", "banned", {"tier": "gold"}) is False


INVALID_CLAUSES: list[tuple[str, list[Any], str]] = [
    ("matches", ["("], "invalid regular expression"),
    ("semVerEqual", ["two"], "not a semantic version"),
    ("semVerEqual", ["v2.0.0"], "not a semantic version"),
    ("semVerGreaterThan", [" 1.0.0"], "not a semantic version"),
    ("before", ["2024-01-01"], "not a timestamp"),
    ("after", ["2024-01-01T00:00:00"], "not a timestamp"),
    ("semVerLessThan", [2], "not a semantic version"),
    ("before", ["yesterday"], "not a timestamp"),
    ("after", [True], "not a timestamp"),
    ("greaterThan", ["ten"], "needs a number"),
    ("lessThanOrEqual", [True], "needs a number"),
    ("startsWith", [5], "needs string values"),
    ("endsWith", [None], "needs string values"),
    ("contains", [["x"]], "needs string values"),
    ("segmentMatch", [3], "segment keys"),
]


@pytest.mark.parametrize(
    ("op", "values", "message"), INVALID_CLAUSES, ids=[f"{c[0]}-{c[1]!r}" for c in INVALID_CLAUSES]
)
def test_invalid_values_are_rejected_at_write_time_naming_the_clause(
    app: App, project: Project, op: str, values: list[Any], message: str
) -> None:
    key = f"bad-{op.lower()}"
    assert ld_create(app, project, key).status_code == 201
    good = {"attribute": "ok", "op": "in", "values": ["x"]}
    bad = {"attribute": "broken", "op": op, "values": values}
    response = ld_patch(app, project, key, [{"kind": "addRule", "clauses": [good, bad]}])
    assert response.status_code == 400, response.text
    detail = response.json()["message"]
    assert "rules[0].clauses[1]" in detail and "'broken'" in detail and message in detail, detail
    assert served_config(app, project).segments[key].rules == []  # nothing was written
    native = app.client.post(
        "/v1/segments/", headers=project.headers(), json={"key": f"{key}-2", "name": "n", "rules": [{"clauses": [bad]}]}
    )
    assert native.status_code == 400 and "rules[0].clauses[0]" in native.json()["detail"], native.text


def test_unknown_operator_and_instruction_are_named(app: App, project: Project) -> None:
    assert ld_create(app, project, "names").status_code == 201
    clause = {"attribute": "a", "op": "equals", "values": [1]}
    response = ld_patch(app, project, "names", [{"kind": "addRule", "clauses": [clause]}])
    assert response.status_code == 400
    assert "unknown operator 'equals'" in response.json()["message"]
    response = ld_patch(app, project, "names", [{"kind": "updateName", "value": "x"}, {"kind": "addWidget"}])
    assert response.status_code == 400
    assert "instruction 1" in response.json()["message"] and "'addWidget'" in response.json()["message"]
    assert served_config(app, project).segments["names"].name == "names"  # all or nothing


def test_unknown_segment_references_and_cycles_are_400_naming_them(app: App, project: Project) -> None:
    for key in ("a", "b"):
        assert ld_create(app, project, key).status_code == 201
    to = {"attribute": "segmentMatch", "op": "segmentMatch"}
    response = ld_patch(app, project, "a", [{"kind": "addRule", "clauses": [{**to, "values": ["ghost"]}]}])
    assert response.status_code == 400
    assert "'a' refers to unknown segment(s): ghost" in response.json()["message"]
    assert ld_patch(app, project, "a", [{"kind": "addRule", "clauses": [{**to, "values": ["b"]}]}]).status_code == 200
    response = ld_patch(app, project, "b", [{"kind": "addRule", "clauses": [{**to, "values": ["a"]}]}])
    assert response.status_code == 400
    assert "cycle: b -> a -> b" in response.json()["message"]  # starting from the segment being changed
    assert served_config(app, project).segments["b"].rules == []
