"""A segment of 100,000 included keys built through the API (in batches under the request size limit), served
in the config, and evaluated in O(1) by the core, over OFREP and by the SDK."""

from __future__ import annotations

import time

import pytest

import setpoint
from setpoint._core.evaluator import compile_config
from tests.segments.support import App, create_variable, ld_create, ld_patch, served_config
from tests.server.support import Project

pytestmark = pytest.mark.slow

SIZE = 100_000
BATCH = 25_000

big_flag = setpoint.var("big_segment_flag", type=str, default="code-default")


def test_a_100k_key_segment_through_the_api(app: App, project: Project) -> None:
    assert ld_create(app, project, "big").status_code == 201
    keys = [f"member-{i:06d}" for i in range(SIZE)]
    for start in range(0, SIZE, BATCH):
        instruction = {"kind": "addIncludedTargets", "contextKind": "user", "values": keys[start : start + BATCH]}
        response = ld_patch(app, project, "big", [instruction])
        assert response.status_code == 200, response.text[:500]
    assert len(response.json()["included"]) == SIZE
    create_variable(
        app,
        project,
        "big_segment_flag",
        {"in": "member", "out": "outsider"},
        {"out": 1.0},
        [([{"kind": "in-segment", "segment": "big"}], {"in": 1.0})],
    )

    config = served_config(app, project)
    assert len(config.segments["big"].included) == SIZE
    compiled = compile_config(config)
    started = time.perf_counter()
    for i in range(0, SIZE, 7):
        assert compiled.evaluate("big_segment_flag", f"member-{i:06d}").label == "in"
        assert compiled.evaluate("big_segment_flag", f"stranger-{i}").label == "out"
    per_call = (time.perf_counter() - started) / (2 * len(range(0, SIZE, 7)))
    assert per_call < 50e-6  # O(1) membership: microseconds, not a scan of 100,000 keys

    headers = project.headers(project.ro_key)
    hit = app.client.post(
        "/ofrep/v1/evaluate/flags/big_segment_flag",
        json={"context": {"targetingKey": "member-099999"}},
        headers=headers,
    )
    assert hit.json()["value"] == "member"
    miss = app.client.post(
        "/ofrep/v1/evaluate/flags/big_segment_flag", json={"context": {"targetingKey": "x"}}, headers=headers
    )
    assert miss.json()["value"] == "outsider"

    setpoint.configure(config=config)
    try:
        assert big_flag.get("member-050000").value == "member"
        assert big_flag.get("member-100000").value == "outsider"
    finally:
        setpoint.shutdown()
