"""Bucketing is portable: pinned by golden vectors, the same in every process, and statistically sound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from setpoint._core.bucketing import bucket
from setpoint._core.evaluator import compile_config
from setpoint.config import LabeledValue, Rollout, VariableConfig, VariablesConfig

GOLDEN = json.loads((Path(__file__).parent / "golden_bucketing.json").read_text(encoding="utf-8"))


def _rollout_config(name: str, weights: dict[str, float]) -> VariablesConfig:
    labels = {label: LabeledValue(version=i + 1, serialized_value=json.dumps(label)) for i, label in enumerate(weights)}
    return VariablesConfig(variables={name: VariableConfig(name=name, labels=labels, rollout=Rollout(labels=weights))})


@pytest.mark.parametrize("vector", GOLDEN["vectors"], ids=lambda v: f"{v['variable']}:{v['targeting_key']}")
def test_golden_bucket_values(vector: dict[str, str | float]) -> None:
    assert bucket(str(vector["variable"]), str(vector["targeting_key"])) == vector["bucket"]
    assert int(str(vector["uint64"])) / 2**64 == vector["bucket"]


def test_golden_rollout_picks() -> None:
    weights = GOLDEN["rollout"]
    for pick in GOLDEN["rollout_picks"]:
        compiled = compile_config(_rollout_config(pick["variable"], weights))
        evaluation = compiled.evaluate(pick["variable"], pick["targeting_key"])
        assert evaluation.label == pick["label"], pick


def test_golden_vectors_cover_both_labels_and_the_remainder() -> None:
    labels = {pick["label"] for pick in GOLDEN["rollout_picks"]}
    assert labels == {"control", "treatment", None}


_CHILD = """
import json, sys
from setpoint._core.evaluator import compile_config
from setpoint.config import VariablesConfig
config = compile_config(VariablesConfig.model_validate_json(sys.stdin.read()))
print(json.dumps([config.evaluate("exp", f"user-{i}").label for i in range(300)]))
"""


def test_same_key_same_label_across_processes_with_different_hash_seeds() -> None:
    config = _rollout_config("exp", {"a": 0.25, "b": 0.25, "c": 0.25})
    results = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD], input=config.to_json(), capture_output=True, text=True, env=env, check=True
        )
        results.append(json.loads(out.stdout))
    assert results[0] == results[1] == results[2]
    assert len(set(results[0])) == 4  # a, b, c and the remainder all occur among 300 keys


@settings(max_examples=25, deadline=None)
@given(weights=st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=1, max_size=4).filter(lambda w: sum(w) <= 1))
def test_label_frequencies_match_weights(weights: list[float]) -> None:
    labels: dict[str | None, float] = {f"l{i}": w for i, w in enumerate(weights)}
    compiled = compile_config(_rollout_config("freq", {str(k): w for k, w in labels.items()}))
    n = 4000
    counts: dict[str | None, int] = {}
    for i in range(n):
        label = compiled.evaluate("freq", f"key-{i}").label
        counts[label] = counts.get(label, 0) + 1
    expected = {**labels, None: max(0.0, 1 - sum(weights))}
    for label, p in expected.items():
        # 5 standard deviations of a binomial proportion, plus float slack: a false alarm is ~1e-6 per check.
        tolerance = 5 * (p * (1 - p) / n) ** 0.5 + 1e-9
        assert abs(counts.get(label, 0) / n - p) <= tolerance, (label, counts, expected)


@settings(max_examples=50, deadline=None)
@given(
    first=st.floats(min_value=0.0, max_value=0.5),
    last=st.floats(min_value=0.0, max_value=0.4),
    raise_by=st.floats(min_value=0.0, max_value=0.1),
)
def test_raising_the_last_labels_weight_never_moves_its_keys_away(first: float, last: float, raise_by: float) -> None:
    before = compile_config(_rollout_config("mono", {"a": first, "b": last}))
    after = compile_config(_rollout_config("mono", {"a": first, "b": last + raise_by}))
    for i in range(500):
        key = f"user-{i}"
        old = before.evaluate("mono", key).label
        new = after.evaluate("mono", key).label
        if old is not None:
            assert new == old, key  # keys that had a or b keep it
        else:
            assert new in (None, "b")  # only the remainder can move, and only into the grown label


def test_weights_summing_to_one_in_float_leave_no_remainder() -> None:
    compiled = compile_config(_rollout_config("sum", {"a": 0.1, "b": 0.2, "c": 0.7}))
    assert all(compiled.evaluate("sum", f"k{i}").label is not None for i in range(3000))


def test_no_targeting_key_draws_at_random() -> None:
    compiled = compile_config(_rollout_config("rand", {"a": 0.5, "b": 0.5}))
    labels = {compiled.evaluate("rand", None).label for _ in range(200)}
    assert labels == {"a", "b"}
