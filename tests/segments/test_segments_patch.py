"""The semantic-patch instructions as pure functions on a segment document."""

from __future__ import annotations

from typing import Any

import pytest

from setpoint._server.services.segments.patch import INSTRUCTION_KINDS, PatchError, apply_instructions

CLAUSE = {"attribute": "plan", "op": "in", "values": ["pro"]}


def _doc(**fields: Any) -> dict[str, Any]:
    return {"key": "seg", "name": "Seg", **fields}


def test_rules_are_added_in_place_reordered_described_and_extended() -> None:
    seg = apply_instructions(
        _doc(), [{"kind": "addRule", "clauses": [CLAUSE]}, {"kind": "addRule", "clauses": [CLAUSE]}]
    )
    first, second = (r.id for r in seg.rules)
    assert first and second and first != second
    doc = seg.model_dump(mode="json")
    seg = apply_instructions(
        doc,
        [
            {"kind": "addRule", "clauses": [{**CLAUSE, "values": ["team"]}], "beforeRuleId": second},
            {"kind": "updateRuleDescription", "ruleId": first, "description": "first"},
            {
                "kind": "addClauses",
                "ruleId": first,
                "clauses": [{"attribute": "age", "op": "greaterThan", "values": [1]}],
            },
        ],
    )
    assert [r.clauses[0].values for r in seg.rules] == [["pro"], ["team"], ["pro"]]
    assert seg.rules[0].description == "first" and len(seg.rules[0].clauses) == 2
    ids = [str(r.id) for r in seg.rules]
    reordered = apply_instructions(seg.model_dump(mode="json"), [{"kind": "reorderRules", "ruleIds": ids[::-1]}])
    assert [r.id for r in reordered.rules] == ids[::-1]
    with pytest.raises(PatchError, match="every rule id exactly once"):
        apply_instructions(seg.model_dump(mode="json"), [{"kind": "reorderRules", "ruleIds": ids[:1]}])


def test_legacy_user_instructions_and_context_targets() -> None:
    seg = apply_instructions(
        _doc(),
        [
            {"kind": "addIncludedUsers", "values": ["a", "b"]},
            {"kind": "addExcludedUsers", "values": ["c"]},
            {"kind": "removeIncludedUsers", "values": ["a"]},
            {"kind": "removeExcludedUsers", "values": ["c"]},
            {"kind": "addIncludedTargets", "contextKind": "device", "values": ["d1"]},
            {"kind": "removeIncludedTargets", "contextKind": "device", "values": ["d1"]},
        ],
    )
    assert seg.included == ["b"] and seg.excluded == [] and seg.included_contexts == []


@pytest.mark.parametrize(
    ("instruction", "message"),
    [
        ({"kind": "updateName"}, "missing field 'value'"),
        ({"kind": "updateName", "value": 3}, "must be str"),
        ({"kind": "addTags", "values": "x"}, "must be list"),
        ({"kind": "addTags", "values": [1]}, "list of strings"),
        ({"kind": "addRule", "clauses": []}, "must not be empty"),
        ({"kind": "addRule", "clauses": [CLAUSE], "weight": 100001}, "'weight' must be an integer from 0 to 100000"),
        ({"kind": "addRule", "clauses": [CLAUSE], "weight": 0.5}, "'weight' must be an integer"),
        ({"kind": "addRule", "clauses": [CLAUSE], "bucketBy": "org"}, "'bucketBy' needs a 'weight'"),
        (
            {"kind": "addRule", "clauses": [CLAUSE], "weight": 1, "bucketBy": "/a//b", "rolloutContextKind": "user"},
            "empty component",
        ),
        (
            {"kind": "addRule", "clauses": [{**CLAUSE, "attribute": "/a~2", "contextKind": "user"}]},
            "'~' must be followed by 0",
        ),
        ({"kind": "addRule", "clauses": [{**CLAUSE, "negate": "yes"}]}, "'negate' must be true or false"),
        ({"kind": "addRule", "clauses": [{**CLAUSE, "weight": 1}]}, "unknown field(s): weight"),
        ({"kind": "addRule", "clauses": [{"op": "in", "values": [1]}]}, "non-empty string 'attribute'"),
        ({"kind": "addIncludedTargets", "values": ["x"]}, "missing field 'contextKind'"),
        ({"kind": "addIncludedTargets", "contextKind": "bad kind", "values": ["x"]}, "context_kind"),
        ({"kind": "updateName", "value": ""}, "name"),
        ("addRule", "must be an object"),
        ({"no": "kind"}, "unknown instruction kind None"),
    ],
)
def test_bad_instructions_name_the_instruction_and_field(instruction: Any, message: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_instructions(_doc(), [instruction])
    assert message in str(caught.value)


def test_every_kind_is_listed() -> None:
    assert {"addRule", "removeRule", "addIncludedTargets", "removeIncludedTargets", "addExcludedTargets",
            "removeExcludedTargets", "updateName", "updateDescription", "addTags", "removeTags"} <= set(
        INSTRUCTION_KINDS)  # fmt: skip
    with pytest.raises(PatchError, match="non-empty list"):
        apply_instructions(_doc(), [])
