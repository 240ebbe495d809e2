"""Regex rules run on RE2 (linear time) with Python's meaning; non-finite numbers never enter a config.

Issue 9, items 2 and 3, at the level of the config model and the SDK (no server).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import setpoint
from setpoint._core import operators as ops
from setpoint._core.evaluator import compile_config
from setpoint.config import VariablesConfig

AGREEMENT_PATTERNS = [
    r"^user-\d+$",
    r"@corp\.com",
    r"(?i)^ADMIN",
    r"^[\w.+-]+@[\w-]+\.\w+$",
    r"\s",
    r"[^\W\d_]+",
    r"\D\S\W",
    r"end$",
    r"(?m)^b$",
    r"x\Z",
    r"^(a|b)*c{2,3}$",
    r"[]a]",
    r"[^]a]",
    r"(?s)a.b",
    r"a.b",
    r"(?P<word>\w+)-(?:x|y)",
    r"[\d\s]",
    r"caf[eé]",
]
INPUTS = [
    "user-12",
    "user-12\n",
    "user-١٢",  # Arabic-Indic digits: \d in Python's Unicode sense
    "USER-1",
    "admin@corp.com",
    "Admin rights",
    "élève@école.fr",
    "a\u2003b",  # em space
    "tab\there",
    "a\nb\n",
    "b\nend\n",
    "x\n",
    "x",
    "abacc",
    "ababccc",
    "]",
    "a\nb",
    "naïve-x",
    "\u0661",
    "café",
    "",
]


@pytest.mark.parametrize("pattern", AGREEMENT_PATTERNS)
def test_re2_agrees_with_python_search(pattern: str) -> None:
    matches = ops.compile_regex(pattern)
    python = re.compile(pattern)
    for text in INPUTS:
        assert matches(text) == (python.search(text) is not None), (pattern, text)
        assert matches(text) == matches(text)  # the memoized answer is the same


@pytest.mark.parametrize("letter", ["d", "D", "w", "W", "s", "S"])
def test_perl_classes_match_pythons_unicode_sets_on_every_code_point(letter: str) -> None:
    matches = ops.compile_regex(f"\\{letter}")
    python = re.compile(f"\\{letter}")
    step = 7  # every 7th code point (all of them takes ~1 s per class)
    for code in range(0, 0x110000, step):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        assert matches(char) == (python.search(char) is not None), hex(code)


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"(a)\1", "backreferences"),
        (r"(?P<x>a)(?P=x)", "backreferences"),
        (r"(?=admin)", "lookahead"),
        (r"(?!admin)", "lookahead"),
        (r"(?<=a)b", "lookbehind"),
        (r"\bword\b", "word boundaries"),
        (r"a++", "possessive"),
        (r"a{1001}", "limited to 1000"),
        ("[[:alpha:]]", "nested set"),
        ("[a--b]", "ambiguous"),
        (r"a{,3}", "{0,n}"),
        (r"(?m:^a$)", "scoped multiline"),
        (r"(?x) a b", "invalid perl operator"),
        (r"\pL", "bad escape"),  # RE2 syntax that Python rejects
        (r"\Qa.b\E", "bad escape"),
        ("((", "missing )"),
    ],
)
def test_patterns_that_cannot_run_alike_are_refused_naming_rule_and_construct(pattern: str, construct: str) -> None:
    variable = {
        "name": "gate",
        "labels": {"on": {"version": 1, "serialized_value": "true"}},
        "overrides": [
            {"conditions": [{"kind": "value-does-not-match-regex", "attribute": "email", "pattern": pattern}],
             "rollout": {"labels": {"on": 1.0}}}
        ],
    }  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        VariablesConfig.model_validate({"variables": {"gate": variable}})
    message = str(caught.value)
    assert "variables.gate.overrides.0.conditions.0" in message and construct in message
    segment = {
        "key": "s",
        "name": "S",
        "rules": [{"clauses": [{"attribute": "email", "op": "matches", "values": [pattern]}]}],
    }
    with pytest.raises(ValidationError) as caught:
        VariablesConfig.model_validate({"variables": {}, "segments": {"s": segment}})
    assert "'email'" in str(caught.value) and construct in str(caught.value)


def test_refused_in_config_files(tmp_path: Path) -> None:
    path = tmp_path / "variables.yaml"
    path.write_text(
        "variables:\n  gate:\n    name: gate\n    labels: {on: {version: 1, serialized_value: 'true'}}\n"
        "    overrides:\n    - conditions: [{kind: value-matches-regex, attribute: x, pattern: '(?<=a)b'}]\n"
        "      rollout: {labels: {on: 1.0}}\n"
    )
    with pytest.raises(ValidationError, match="lookbehind"):
        VariablesConfig.read(path)


def _hostile_config(pattern: str) -> dict[str, Any]:
    rule = {"conditions": [{"kind": "value-matches-regex", "attribute": "x", "pattern": pattern}]}
    segment = {
        "key": "evil",
        "name": "E",
        "rules": [{"clauses": [{"attribute": "x", "op": "matches", "values": [pattern]}]}],
    }
    return {
        "variables": {
            "gate": {
                "name": "gate",
                "labels": {"on": {"version": 1, "serialized_value": "true"}},
                "overrides": [
                    {**rule, "rollout": {"labels": {"on": 1.0}}},
                    {"conditions": [{"kind": "in-segment", "segment": "evil"}], "rollout": {"labels": {"on": 1.0}}},
                ],
            }
        },
        "segments": {"evil": segment},
    }


def test_catastrophic_pattern_is_linear_in_the_core_and_the_sdk() -> None:
    """``(a+)+$`` against ``a...a!``: Python's re takes minutes at 30 characters; RE2 answers at once."""
    config = VariablesConfig.model_validate(_hostile_config("(a+)+$"))
    compiled = compile_config(config)
    for length in (30, 10_000, 1_000_000):
        ev = compiled.evaluate("gate", None, {"x": "a" * length + "!"})
        assert ev.serialized_value is None  # neither rule matches
    assert compiled.evaluate("gate", None, {"x": "a" * 10_000}).label == "on"

    setpoint.configure(config=config, instrument=False)
    try:
        gate = setpoint.var(name="gate", type=bool, default=False)
        started = time.perf_counter()
        assert gate.get(attributes={"x": "a" * 30 + "!"}).value is False
        assert gate.get(attributes={"x": "a" * 30}).value is True
        assert time.perf_counter() - started < 60  # only a hang would get near this
    finally:
        setpoint.configure(config=VariablesConfig(variables={}), instrument=False)


def test_surrogates_and_non_strings_never_raise() -> None:
    matches = ops.compile_regex(r"^a\w")
    assert matches("ab\ud800") is True
    assert matches("\ud800") is False
    assert matches(12) is False and matches(None) is False


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e309", "[1, 2e400]", '{"a": NaN}'])
def test_non_finite_values_are_refused_by_the_config_model(text: str, tmp_path: Path) -> None:
    data = {"variables": {"limit": {"name": "limit", "labels": {"prod": {"version": 1, "serialized_value": text}}}}}
    with pytest.raises(ValidationError) as caught:
        VariablesConfig.model_validate(data)
    assert "variables.limit.labels.prod" in str(caught.value) and "finite" in str(caught.value)
    path = tmp_path / "variables.json"
    path.write_text(VariablesConfig(variables={}).to_json().replace('"variables": {}', f'"variables": {_json(data)}'))
    with pytest.raises(ValidationError, match="limit"):
        VariablesConfig.read(path)


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data["variables"])


@pytest.mark.parametrize(
    "condition",
    [
        {"kind": "value-equals", "attribute": "a", "value": float("nan")},
        {"kind": "value-is-in", "attribute": "a", "values": [1, float("inf")]},
        {"kind": "value-greater-than", "attribute": "a", "value": float("-inf")},
    ],
)
def test_non_finite_condition_values_are_refused(condition: dict[str, Any], tmp_path: Path) -> None:
    variable = {
        "name": "gate",
        "labels": {"on": {"version": 1, "serialized_value": "true"}},
        "overrides": [{"conditions": [condition], "rollout": {"labels": {"on": 1.0}}}],
    }
    with pytest.raises(ValidationError, match="NaN or infinite"):
        VariablesConfig.model_validate({"variables": {"gate": variable}})
    yaml_path = tmp_path / "v.yaml"
    value = ".nan" if condition.get("value") != condition.get("value") else "[1, .inf]"
    field = "value" if "value" in condition else "values"
    yaml_path.write_text(
        "variables:\n  gate:\n    name: gate\n    labels: {on: {version: 1, serialized_value: 'true'}}\n"
        f"    overrides:\n    - conditions: [{{kind: {condition['kind']}, attribute: a, {field}: {value}}}]\n"
        "      rollout: {labels: {on: 1.0}}\n"
    )
    if condition["kind"] != "value-greater-than":
        with pytest.raises(ValidationError, match="gate"):
            VariablesConfig.read(yaml_path)


@pytest.mark.parametrize("pattern", AGREEMENT_PATTERNS)
def test_the_re2_program_itself_agrees_with_python(pattern: str) -> None:
    """Whichever path compile_regex takes (fast path or RE2), RE2's translation means the same."""
    program = ops.compile_re2(pattern)
    python = re.compile(pattern)
    for text in INPUTS:
        data = text.encode("utf-8", "surrogatepass")
        found = program.Match(program.Anchor.UNANCHORED, data, 0, len(data))[0] != (-1, -1)
        assert found == (python.search(text) is not None), (pattern, text)


@pytest.mark.parametrize(
    ("pattern", "fast"),
    [
        (r"^[\w.+-]+@(corp|example)\.com$", True),
        (r"^user-\d+$", True),
        (r"^[^@]+@", True),
        (r"^(ab|cd)x?$", True),
        (r"^\w+\w+$", False),  # two overlapping repetitions: polynomial backtracking
        (r"^(a+)+$", False),  # nested repetition: exponential
        (r"^a*a", False),
        (r"^x?x", False),
        (r"^\d+\d", False),
        (r"^a.*b", False),
        (r"@corp\.com$", True),  # unanchored, starts with a literal no repetition takes
        (r"@(corp|example)\.com$", True),
        (r"@[a-z]+\.com$", True),
        (r"a[a-z]*c", False),  # the repetition takes the start character: quadratic on "aaaa..."
        (r"[0-9]+x", False),  # starts with a repetition
        (r"\.?com", False),
        (r"(?i)^abc", False),
        (r"^(a|ab)(c|bcd)(d*)$", False),
    ],
)
def test_only_provably_linear_patterns_take_the_python_fast_path(pattern: str, fast: bool) -> None:
    assert ops._deterministic(pattern) is fast


def test_fast_path_patterns_stay_linear_on_hostile_input() -> None:
    for pattern in (r"^[\w.+-]+@(corp|example)\.com$", r"^[a-z]+@[a-z]+$", r"^user-\d+$", r"@[a-z]+\.com$", r"x\d*y"):
        assert ops._deterministic(pattern)
        matches = ops.compile_regex(pattern)
        for text in (
            "a" * 200_000,
            "user-" + "1" * 200_000 + "x",
            "a" * 100_000 + "@" + "b" * 100_000 + "!",
            "@a" * 100_000,
            "x" + "1" * 200_000,
            "x1" * 100_000,
        ):
            started = time.perf_counter()
            matches(text)
            assert time.perf_counter() - started < 5  # quadratic would be minutes at this size
