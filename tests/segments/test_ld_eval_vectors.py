"""LaunchDarkly's published server-side evaluation cases, run as Setpoint segments.

``ld_eval_vectors.json`` is made by ``scripts/ld_eval_vectors.py`` from ``launchdarkly/sdk-test-harness``
(Apache-2.0; source, commit and licence in its header). Each vector is a LaunchDarkly flag's rules and the
segments they reference: every rule becomes a Setpoint segment (created through the same LaunchDarkly-shaped
conversion as ``/api/v2/segments``) and a variable has one ``in-segment`` override per rule, in order; the
label served must be the rule LaunchDarkly expects to match (or none). The same vectors also run through
LaunchDarkly's own Python SDK evaluator, to show that the translation into segments keeps their meaning.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ldclient.context import Context
from ldclient.impl.evaluator import Evaluator
from ldclient.impl.events.types import EventFactory
from ldclient.impl.model import FeatureFlag
from ldclient.impl.model import Segment as LdSegment
from pydantic import ValidationError

from setpoint._core.evaluator import compile_config
from setpoint._server.services.segments.patch import PatchError
from setpoint._server.services.segments.wire import doc_from_ld
from setpoint.config import VariablesConfig

VECTORS = json.loads((Path(__file__).parent / "ld_eval_vectors.json").read_text())
HEADER: dict[str, Any] = VECTORS["header"]
CASES: list[dict[str, Any]] = VECTORS["vectors"]

# Cases about LaunchDarkly flag features that Setpoint's variables do not have (counted by the converter).
EXPECTED_SKIPS = {
    "flag off": 28,
    "flag rollouts": 16,
    "flag targets": 48,
    "flag variation index out of range": 10,
    "flag without rules (variation values)": 11,
    "no flag or no context": 10,
    "prerequisites": 14,
}
# Configs LaunchDarkly accepts (the clause just never matches, or the evaluation errors) that Setpoint refuses
# when they are written, by what the refusal message says.
EXPECTED_REFUSALS = {
    "is not a semantic version": 39,  # null / true / 2 / {} / '02.0.0' / 'v2.0.0' / '2.0.0.0' as a semver literal
    "is not a timestamp": 54,  # null / true / {} / '2017-12-06' / 'badstring' / ... as a before/after literal
    "attribute reference": 3,  # '///', '/a~b', '/a~' (LaunchDarkly: a malformed-flag error)
    "needs a non-empty string 'attribute'": 1,  # a clause without an attribute (same)
    "unknown operator": 1,  # LaunchDarkly: a clause that never matches
    "refers to unknown segment": 1,  # LaunchDarkly: a segmentMatch that never matches
    "cycle": 2,  # segments that reference each other (LaunchDarkly: a malformed-flag error)
    # The harness misspells one rule's "clauses" ("clauss"), so LaunchDarkly reads a rule without clauses,
    # which matches everyone; Setpoint refuses a rule without clauses.
    "at least 1 item": 1,
}
TOTAL = 591


def _setpoint_config(case: dict[str, Any]) -> VariablesConfig:
    """The vector as a Setpoint config: one segment per flag rule and one in-segment override per rule."""
    segments = {}
    for ld in case["segments"]:
        body = {"name": ld["key"], **ld}
        segments[ld["key"]] = doc_from_ld(body)
    overrides = []
    for index, clauses in enumerate(case["rules"]):
        key = f"flag-rule-{index}"
        segments[key] = doc_from_ld({"key": key, "name": key, "rules": [{"clauses": clauses}]})
        overrides.append(
            {"conditions": [{"kind": "in-segment", "segment": key}], "rollout": {"labels": {f"rule-{index}": 1}}}
        )
    labels = {f"rule-{index}": {"version": 1, "serialized_value": "true"} for index in range(len(case["rules"]))}
    variable = {"name": "flag", "labels": labels, "rollout": {"labels": {}}, "overrides": overrides, "json_schema": {}}
    return VariablesConfig.model_validate({"variables": {"flag": variable}, "segments": segments})


def _setpoint_outcome(case: dict[str, Any]) -> int | None:
    evaluation = compile_config(_setpoint_config(case)).evaluate("flag", case["key"], case["attributes"])
    return None if evaluation.label is None else int(evaluation.label.removeprefix("rule-"))


def _refusal(case: dict[str, Any]) -> str | None:
    """The message if Setpoint refuses the vector's config when it is written, else None."""
    try:
        _setpoint_config(case)
    except (ValidationError, PatchError, ValueError) as exc:
        return str(exc)
    return None


def _category(message: str) -> str:
    for category in EXPECTED_REFUSALS:
        if category in message:
            return category
    raise AssertionError(f"unexpected refusal: {message}")


def test_the_vectors_cite_their_source_and_count_what_they_skip() -> None:
    assert HEADER["source"] == "https://github.com/launchdarkly/sdk-test-harness"
    assert len(HEADER["commit"]) == 40 and HEADER["licence"].startswith("Apache-2.0")
    assert HEADER["skipped"] == EXPECTED_SKIPS
    assert len(CASES) == TOTAL
    assert {c["file"] for c in CASES} >= {
        "segment-match.yml",
        "segment-recursion.yml",
        "clause-kind-matching.yml",
        "attribute-references.yml",
        "operators-semver-equal.yml",
        "operators-date-unequal.yml",
        "operators-string.yml",
    }


def test_every_vector_evaluates_as_launchdarkly_expects() -> None:
    refusals: Counter[str] = Counter()
    failures = []
    evaluated = 0
    for case in CASES:
        message = _refusal(case)
        if message is not None:
            category = _category(message)
            refusals[category] += 1
            continue
        if case["expect"] == "refused":
            failures.append((case["name"], "LaunchDarkly errors (or cannot resolve it) but Setpoint accepted it"))
            continue
        evaluated += 1
        outcome = _setpoint_outcome(case)
        if outcome != case["expect"]:
            failures.append((case["name"], f"rule {outcome} matched, LaunchDarkly expects {case['expect']}"))
    assert failures == []
    assert dict(refusals) == EXPECTED_REFUSALS
    assert evaluated == TOTAL - sum(EXPECTED_REFUSALS.values())


def _with_attribute(clauses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clauses as the harness serializes them for an SDK: a missing ``attribute`` is ``""``."""
    return [{"attribute": "", **clause} for clause in clauses]


def _ld_outcome(case: dict[str, Any]) -> int | str | None:
    segments = {}
    for ld in case["segments"]:
        rules = [{**rule, "clauses": _with_attribute(rule["clauses"])} for rule in ld.get("rules", [])]
        segments[ld["key"]] = LdSegment({"version": 1, **ld, "rules": rules})
    rules = [
        {"id": f"r{i}", "variation": 1 + i, "clauses": _with_attribute(clauses)}
        for i, clauses in enumerate(case["rules"])
    ]
    flag = FeatureFlag(
        {
            "key": "flag",
            "version": 1,
            "on": True,
            "variations": list(range(len(rules) + 1)),
            "fallthrough": {"variation": 0},
            "offVariation": 0,
            "rules": rules,
            "salt": "s",
        }
    )
    evaluator = Evaluator(lambda key: None, segments.get, lambda key: (None, "NOT_CONFIGURED"), logging.getLogger())
    context = Context.from_dict(case["ld_context"]) if "kind" in case["ld_context"] else _legacy(case["ld_context"])
    detail = evaluator.evaluate(flag, context, EventFactory(False)).detail
    assert detail is not None
    if detail.reason["kind"] == "ERROR":
        return "refused"
    return None if detail.value == 0 else int(detail.value) - 1


def _legacy(user: dict[str, Any]) -> Context:
    builder = Context.builder(user["key"])
    for name, value in user.items():
        if name not in ("key", "custom"):
            builder.set(name, value)
    for name, value in (user.get("custom") or {}).items():
        builder.set(name, value)
    return builder.build()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_launchdarklys_python_evaluator_agrees_with_the_translated_vectors() -> None:
    disagreements = []
    for case in CASES:
        expected = case["expect"]
        got = _ld_outcome(case)
        if case["name"].startswith("segment match: unknown segment"):
            expected = None  # LaunchDarkly: an unknown segment is a non-match (Setpoint refuses it when written)
        if got != expected:
            disagreements.append((case["name"], got, expected))
    assert disagreements == []
