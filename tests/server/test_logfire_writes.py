"""Writes from the real Logfire SDK never drop targeting it was not shown (issue 9, item 1).

The server serves Logfire clients a rewritten config (Setpoint-only conditions rewritten or left out); when
such a client writes the variable back, what it was not served is kept in place, or the write is refused
with 409.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import pytest

from tests.server.conftest import BACKENDS
from tests.server.support import Project, ServerProcess, subprocess_env

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

LOGFIRE_UA = {"User-Agent": "logfire/5.4.0"}


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _rollout(label: str) -> dict[str, Any]:
    return {"labels": {label: 1.0}}


SCHEMA_V1 = {
    "type": "object",
    "properties": {"model": {"type": "string", "default": "small"}},
    "title": "AgentConfig",
}


def _setup(server: ServerProcess, project: Project, overrides: list[dict[str, Any]]) -> tuple[str, str]:
    """A segment ``beta`` with included keys, and a variable whose overrides are ``overrides``."""
    name, segment = _name("agent"), _name("beta")
    overrides = json.loads(json.dumps(overrides).replace("SEGMENT", segment))
    labels = {
        label: {"target_type": "version", "serialized_value": json.dumps({"model": label})}
        for label in ("small", "large", "huge", "tiny")
    }
    with server.client(project) as client:
        seg = {"key": segment, "name": "Beta testers", "included": ["user-1", "user-2"]}
        assert client.post("/v1/segments/", json=seg).status_code == 201
        body = {
            "name": name,
            "json_schema": SCHEMA_V1,
            "labels": labels,
            "rollout": _rollout("small"),
            "overrides": overrides,
        }
        response = client.post("/v1/variables/", json=body)
        assert response.status_code == 201, response.text
    return name, segment


IN_SEGMENT = {"conditions": [{"kind": "in-segment", "segment": "SEGMENT"}], "rollout": _rollout("large")}
GREATER = {"conditions": [{"kind": "value-greater-than", "attribute": "age", "value": 30}], "rollout": _rollout("huge")}
EQUALS = {"conditions": [{"kind": "value-equals", "attribute": "plan", "value": "pro"}], "rollout": _rollout("tiny")}
NEGATED = {
    "conditions": [{"kind": "value-is-in", "attribute": "country", "values": ["fr"], "negate": True}],
    "rollout": _rollout("large"),
}

PUSH_SCRIPT = textwrap.dedent(
    """
    import sys
    import logfire
    from pydantic import BaseModel

    url, api_key, name = sys.argv[1:4]

    class AgentConfig(BaseModel):
        model: str = "small"
        temperature: float | None = None  # the new optional field

    lf = logfire.configure(
        send_to_logfire=False, console=False, api_key=api_key, local=True,
        advanced=logfire.AdvancedOptions(base_url=url),
        variables=logfire.VariablesOptions(block_before_first_resolve=True),
    )
    agent = lf.var(name=name, type=AgentConfig, default=AgentConfig())
    ok = lf.variables_push([agent], yes=True)
    lf.config.get_variable_provider().shutdown(timeout_millis=2000)
    print("PUSHED", ok)
    """
)


def _logfire_push(server: ServerProcess, project: Project, name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PUSH_SCRIPT, server.url, project.rw_key, name],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_logfire_sdk_push_keeps_targeting_it_cannot_see(server: ServerProcess, project: Project) -> None:
    name, segment = _setup(server, project, [IN_SEGMENT, GREATER, EQUALS])
    with server.client(project) as client:
        before = client.get(f"/v1/variables/{name}/").json()
        served = client.get("/v1/variables/", headers=LOGFIRE_UA).json()["variables"][name]
    assert len(served["overrides"]) == 1  # the Logfire SDK sees only the value-equals rule

    output = _logfire_push(server, project, name)
    assert "PUSHED True" in output

    with server.client(project) as client:
        after = client.get(f"/v1/variables/{name}/").json()
        assert "temperature" in after["json_schema"]["properties"]  # the push did happen
        assert after["overrides"] == before["overrides"]  # every rule survives, in order
        in_use = client.delete(f"/v1/segments/{segment}/")
        assert in_use.status_code == 409 and name in in_use.json()["detail"]  # the segment still counts as used
        resolved = client.post("/v1/resolve/", json={"targeting_key": "user-1", "variables": [name]}).json()
        assert resolved["results"][0]["label"] == "large"


def test_rewritten_overrides_come_back_in_their_original_form(server: ServerProcess, project: Project) -> None:
    name, _ = _setup(server, project, [NEGATED, GREATER, EQUALS])
    with server.client(project) as client:
        stored = client.get(f"/v1/variables/{name}/").json()
        served = client.get("/v1/variables/", headers=LOGFIRE_UA).json()["variables"][name]
        # Served: the negated rule as its opposite kind (no `negate`), the number rule left out.
        assert served["overrides"][0]["conditions"][0]["kind"] == "value-is-not-in"
        assert len(served["overrides"]) == 2
        added = {"conditions": [{"kind": "key-is-present", "attribute": "beta"}], "rollout": _rollout("small")}
        body = {
            "name": name,
            "description": "changed by Logfire",
            "json_schema": SCHEMA_V1,
            "rollout": served["rollout"],
            # The client drops the plan rule and appends its own.
            "overrides": [served["overrides"][0], added],
            "labels": {lb: {"target_type": "version", "version": v["version"]} for lb, v in stored["labels"].items()},
        }
        response = client.put(f"/v1/variables/{name}/", json=body, headers=LOGFIRE_UA)
        assert response.status_code == 200, response.text
        after = client.get(f"/v1/variables/{name}/").json()
    assert after["description"] == "changed by Logfire"
    assert after["overrides"] == [NEGATED, GREATER, added]


def test_partial_change_of_an_expanded_segment_is_refused(server: ServerProcess, project: Project) -> None:
    name, segment = _name("flag"), _name("eu")
    rules = [
        {"clauses": [{"attribute": "country", "op": "in", "values": ["fr", "de"]}]},
        {"clauses": [{"attribute": "lang", "op": "startsWith", "values": ["fr"]}]},
    ]
    overrides = [{"conditions": [{"kind": "in-segment", "segment": segment}], "rollout": _rollout("on")}]
    with server.client(project) as client:
        client.post("/v1/segments/", json={"key": segment, "name": "EU", "rules": rules}).raise_for_status()
        labels = {"on": {"target_type": "version", "serialized_value": "true"}}
        body = {"name": name, "labels": labels, "rollout": {"labels": {}}, "overrides": overrides}
        client.post("/v1/variables/", json=body).raise_for_status()
        served = client.get("/v1/variables/", headers=LOGFIRE_UA).json()["variables"][name]
        assert len(served["overrides"]) == 2  # one per rule
        put = {
            "name": name,
            "rollout": served["rollout"],
            "overrides": served["overrides"][:1],
            "labels": {"on": {"target_type": "version", "version": 1}},
        }
        refused = client.put(f"/v1/variables/{name}/", json=put, headers=LOGFIRE_UA)
        assert refused.status_code == 409
        assert "override 0" in refused.json()["detail"] and "Setpoint" in refused.json()["detail"]
        assert client.get(f"/v1/variables/{name}/").json()["overrides"] == overrides  # nothing changed
        # Sending the expansion back unchanged keeps the segment rule.
        put["overrides"] = served["overrides"]
        assert client.put(f"/v1/variables/{name}/", json=put, headers=LOGFIRE_UA).status_code == 200
        assert client.get(f"/v1/variables/{name}/").json()["overrides"] == overrides
        # A Setpoint client (no logfire/ User-Agent) replaces as it says.
        put["overrides"] = []
        assert client.put(f"/v1/variables/{name}/", json=put).status_code == 200
        assert client.get(f"/v1/variables/{name}/").json()["overrides"] == []


def test_fields_the_logfire_sdk_does_not_send_are_kept(server: ServerProcess, project: Project) -> None:
    name = _name("typed")
    with server.client(project) as client:
        client.post("/v1/variable-types/", json={"name": "Limits", "json_schema": {"type": "integer"}})
        body = {
            "name": name,
            "type_name": "Limits",
            "aliases": [_name("old")],
            "example": "3",
            "labels": {"prod": {"target_type": "version", "serialized_value": "5"}},
            "rollout": _rollout("prod"),
        }
        client.post("/v1/variables/", json=body).raise_for_status()
        # What the Logfire SDK's schema update sends: no type_name, aliases or example.
        put: dict[str, Any] = {
            "name": name,
            "description": None,
            "rollout": _rollout("prod"),
            "overrides": [],
            "labels": {"prod": {"target_type": "version", "version": 1, "serialized_value": "5"}},
        }
        assert client.put(f"/v1/variables/{name}/", json=put, headers=LOGFIRE_UA).status_code == 200
        after = client.get(f"/v1/variables/{name}/").json()
    assert (after["type_name"], after["aliases"], after["example"]) == ("Limits", body["aliases"], "3")
