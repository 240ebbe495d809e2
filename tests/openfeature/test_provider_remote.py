"""`SetpointProvider` with the SDK's remote provider: a segment edited through the segments API reaches an
OpenFeature client evaluating in-process (snapshot -> SSE -> SDK -> provider)."""

from __future__ import annotations

import time
from datetime import timedelta

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

import setpoint
from setpoint.openfeature import SetpointProvider
from tests.segments.support import App, create_variable, ld_create, ld_patch
from tests.server.support import Project


def test_a_segment_change_reaches_an_openfeature_client(app: App, project: Project) -> None:
    assert ld_create(app, project, "testers", included=["alice"]).status_code == 201
    overrides = [([{"kind": "in-segment", "segment": "testers"}], {"on": 1.0})]
    create_variable(app, project, "remote_checkout", {"on": True, "off": False}, {"off": 1.0}, overrides)
    options = setpoint.RemoteOptions(url=app.url, api_key=project.ro_key, polling_interval=timedelta(seconds=30))
    remote = setpoint.configure(remote=options, instrument=False)
    try:
        api.set_provider_and_wait(SetpointProvider(ready_timeout=10), domain="setpoint-remote")
        client = api.get_client(domain="setpoint-remote")
        alice = client.get_boolean_details("remote_checkout", False, EvaluationContext("alice"))
        assert (alice.value, alice.reason, alice.variant) == (True, Reason.TARGETING_MATCH, "on")
        assert client.get_boolean_value("remote_checkout", True, EvaluationContext("bob")) is False
        deadline = time.monotonic() + 15
        while not remote.debug_state()["sse_connected"]:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the SDK did not connect to the update stream"
            time.sleep(0.02)

        assert ld_patch(app, project, "testers", [{"kind": "addIncludedTargets", "contextKind": "user",
                                                   "values": ["bob"]}]).status_code == 200  # fmt: skip
        deadline = time.monotonic() + 15
        while not client.get_boolean_value("remote_checkout", False, EvaluationContext("bob")):
            assert time.monotonic() < deadline, "the segment change did not reach the SDK"
            time.sleep(0.05)
    finally:
        api.clear_providers()
        setpoint.shutdown()
