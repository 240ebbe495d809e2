"""The real Logfire SDK (``logfire-sdk`` from PyPI) pointed at a running Setpoint server works unchanged."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from logfire.variables import VariablesConfig
from pydantic import BaseModel

from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from tests.server.conftest import BACKENDS
from tests.server.logfire_support import logfire_against, remote_provider, wait_for
from tests.server.support import Project, ServerProcess

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")


class AgentConfig(BaseModel):
    model: str = "small"
    temperature: float = 0.5


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_push_push_types_validate_and_resolve(server: ServerProcess, project: Project) -> None:
    with logfire_against(server.url, project.rw_key) as lf:
        agent = lf.var(name=_name("agent"), type=AgentConfig, default=AgentConfig())
        flag = lf.var(name=_name("flag"), type=bool, default=False)
        assert lf.variables_push([agent, flag], yes=True)
        lf.variables_push_types([AgentConfig], yes=True)
        report = lf.variables_validate([agent, flag])
        assert not report.has_errors and report.variables_not_on_server == []

        with server.client(project) as client:
            types = client.get("/v1/variable-types/").json()
            assert [t["name"] for t in types] == ["AgentConfig"]
            stored = client.get(f"/v1/variables/{agent.name}/").json()
            assert stored["json_schema"] == AgentConfig.model_json_schema()
            assert stored["example"] == AgentConfig().model_dump_json()
            # A new version and a label move, through the API.
            value = {"target_type": "version", "serialized_value": json.dumps({"model": "large", "temperature": 1})}
            client.put(f"/v1/variables/{agent.name}/labels/prod/", json=value).raise_for_status()
            body = {
                **stored,
                "rollout": {"labels": {"prod": 1.0}},
                "labels": {"prod": {"target_type": "version", "version": 1}},
            }
            for field in ("latest_version", "type_name"):
                body.pop(field)
            client.put(f"/v1/variables/{agent.name}/", json=body).raise_for_status()

        remote_provider(lf).refresh(force=True)
        with agent.get(targeting_key="user-1") as resolved:
            assert resolved.value == AgentConfig(model="large", temperature=1)
            assert (resolved.label, resolved.version) == ("prod", 1)
        with flag.get() as resolved:
            assert resolved.value is False and resolved.label is None


def test_validate_reports_values_that_do_not_fit(server: ServerProcess, project: Project) -> None:
    name = _name("limit")
    with server.client(project) as client:
        labels = {"prod": {"target_type": "version", "serialized_value": '"not a number"'}}
        client.post("/v1/variables/", json={"name": name, "labels": labels, "rollout": {"labels": {"prod": 1}}})
    with logfire_against(server.url, project.rw_key) as lf:
        limit = lf.var(name=name, type=int, default=3)
        missing = lf.var(name=_name("missing"), type=int, default=1)
        report = lf.variables_validate([limit, missing])
        assert report.has_errors
        assert report.variables_not_on_server == [missing.name]
        with limit.get() as resolved:
            assert resolved.value == 3  # an invalid remote value falls back to the code default


def test_a_change_arrives_through_sse_before_the_next_poll(server: ServerProcess, project: Project) -> None:
    name = _name("banner")
    with server.client(project) as client:
        labels = {"prod": {"target_type": "version", "serialized_value": '"old"'}}
        client.post("/v1/variables/", json={"name": name, "labels": labels, "rollout": {"labels": {"prod": 1}}})
        with logfire_against(server.url, project.rw_key, polling_interval=60) as lf:
            banner = lf.var(name=name, type=str, default="default")
            assert banner.get().value == "old"
            provider = remote_provider(lf)
            wait_for(lambda: provider._sse_connected)
            new = {"target_type": "version", "serialized_value": '"new"'}
            client.put(f"/v1/variables/{name}/labels/prod/", json=new).raise_for_status()
            took = wait_for(lambda: banner.get().value == "new", timeout=8)
    assert took < 8  # the poll interval is 60 s: only the SSE event can explain this


def test_push_config_merge_replace_and_pull_round_trip(server: ServerProcess, project: Project) -> None:
    keep, merged, extra = _name("keep"), _name("merged"), _name("extra")
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": keep}).raise_for_status()
    config = VariablesConfig.model_validate(
        {
            "variables": {
                merged: {
                    "name": merged,
                    "description": "pushed",
                    "labels": {
                        "a": {"version": 1, "serialized_value": '"one"'},
                        "b": {"version": 2, "serialized_value": '"two"'},
                        "c": {"ref": "a"},
                        "d": {"ref": "latest", "version": 2},  # the server fills in the version reached
                    },
                    "rollout": {"labels": {"a": 0.5, "b": 0.5}},
                    "overrides": [
                        {
                            "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "pro"}],
                            "rollout": {"labels": {"c": 1.0}},
                        }
                    ],
                    "json_schema": {"type": "string"},
                },
                extra: {"name": extra, "rollout": {"labels": {}}, "overrides": []},
            }
        }
    )
    with logfire_against(server.url, project.rw_key) as lf:
        assert lf.variables_push_config(config, mode="merge", yes=True)
        pulled = lf.variables_pull_config()
        assert set(pulled.variables) == {keep, merged, extra}
        for name in (merged, extra):
            assert pulled.variables[name].model_dump(exclude={"latest_version"}) == config.variables[name].model_dump(
                exclude={"latest_version"}
            )
        assert pulled.variables[merged].latest_version is not None
        assert pulled.variables[merged].latest_version.version == 2
        # Pushing what was pulled changes nothing.
        assert lf.variables_push_config(pulled, mode="replace", yes=True) is False
        # Replace mode deletes what the config does not list.
        only = VariablesConfig(variables={merged: pulled.variables[merged]})
        assert lf.variables_push_config(only, mode="replace", yes=True)
        assert set(lf.variables_pull_config().variables) == {merged}
        resolved = lf.var(name=merged, type=str, default="x")
        with resolved.get(attributes={"plan": "pro"}) as result:
            assert (result.value, result.label, result.version) == ("one", "c", 1)


def _put_segment(ctx: ServiceContext, project: Project, key: str, data: dict[str, Any]) -> None:
    """Store a segment the way the segments service does (audited, announced to the server)."""
    with ctx.storage.write() as tx:
        tx.put_segment(project.id, key, data, None)
        tx.add_audit(project.id, "tests", "create", "segment", key, None, data)
        ctx.sink.record(tx, Change(project.id, "segment", "created", key))


# The Logfire SDK surfaces X-Logfire-Warning as a LogfireServerWarning (from its polling thread too).
@pytest.mark.filterwarnings("ignore::logfire.exceptions.LogfireServerWarning")
def test_logfire_clients_only_get_json_they_can_validate(
    server: ServerProcess, project: Project, server_ctx: ServiceContext
) -> None:
    name = _name("tiered")
    with server.client(project) as client:
        segment = {
            "key": "beta",
            "name": "Beta",
            "rules": [
                {"clauses": [{"attribute": "plan", "op": "in", "values": ["pro", "team"]}]},
                {"clauses": [{"attribute": "email", "op": "endsWith", "values": ["@example.com"]}]},
            ],
        }
        _put_segment(server_ctx, project, "beta", segment)
        wait_for(lambda: "beta" in client.get("/v1/variables/").json().get("segments", {}), timeout=5)
        labels = {
            "on": {"target_type": "version", "serialized_value": '"on"'},
            "off": {"target_type": "version", "serialized_value": '"off"'},
        }
        overrides = [
            {
                "conditions": [{"kind": "value-equals", "attribute": "country", "value": "FR", "negate": True}],
                "rollout": {"labels": {"off": 1}},
            },
            {
                "conditions": [{"kind": "value-greater-than", "attribute": "age", "value": 65}],
                "rollout": {"labels": {"off": 1}},
            },
            {"conditions": [{"kind": "in-segment", "segment": "beta"}], "rollout": {"labels": {"on": 1}}},
            {
                "conditions": [{"kind": "value-starts-with", "attribute": "region", "values": ["eu-"]}],
                "rollout": {"labels": {"on": 1}},
            },
        ]
        body = {"name": name, "labels": labels, "rollout": {"labels": {}}, "overrides": overrides}
        assert client.post("/v1/variables/", json=body).status_code == 201
        native_response = client.get("/v1/variables/")
        native = native_response.json()
        as_logfire = client.get("/v1/variables/", headers={"User-Agent": "logfire/5.2.0"})
    assert native["variables"][name]["overrides"][0]["conditions"][0]["negate"] is True
    assert "segments" in native
    data = as_logfire.json()
    VariablesConfig.model_validate(data)
    assert "segments" not in data
    conditions = [o["conditions"] for o in data["variables"][name]["overrides"]]
    assert conditions == [
        [{"kind": "value-does-not-equal", "attribute": "country", "value": "FR"}],
        [{"kind": "value-is-in", "attribute": "plan", "values": ["pro", "team"]}],
        [{"kind": "value-matches-regex", "attribute": "email", "pattern": r"(?:@example\.com)\Z"}],
        [{"kind": "value-matches-regex", "attribute": "region", "pattern": "^(?:eu\\-)"}],
    ]
    warning = as_logfire.headers["x-logfire-warning"]
    assert name in warning and "value-greater-than" in warning
    assert "rule #2 (overrides[1])" in warning  # numbered as the UI's Rule 2, with the precise path
    assert as_logfire.headers["etag"] != native_response.headers["etag"]

    with logfire_against(server.url, project.rw_key) as lf:
        tiered = lf.var(name=name, type=str, default="code default")
        assert tiered.get(attributes={"country": "DE"}).value == "off"
        assert tiered.get(attributes={"country": "FR", "plan": "team"}).value == "on"
        assert tiered.get(attributes={"country": "FR", "email": "a@example.com"}).value == "on"
        assert tiered.get(attributes={"country": "FR", "region": "eu-west"}).value == "on"
        assert tiered.get(attributes={"country": "FR", "age": 70}).value == "code default"


def test_pushing_a_changed_type_updates_the_schema_and_keeps_labels(server: ServerProcess, project: Project) -> None:
    name = _name("evolving")

    class V1(BaseModel):
        model: str = "small"

    class V2(BaseModel):
        model: str = "small"
        retries: int = 3

    with logfire_against(server.url, project.rw_key) as lf:
        assert lf.variables_push([lf.var(name=name, type=V1, default=V1())], yes=True)
        with server.client(project) as client:
            label = {"target_type": "version", "serialized_value": '{"model": "large"}'}
            client.put(f"/v1/variables/{name}/labels/prod/", json=label).raise_for_status()
            before = client.get(f"/v1/variables/{name}/").json()
    with logfire_against(server.url, project.rw_key) as lf:
        assert lf.variables_push([lf.var(name=name, type=V2, default=V2())], yes=True)
        with server.client(project) as client:
            after = client.get(f"/v1/variables/{name}/").json()
    assert after["json_schema"] == V2.model_json_schema() != before["json_schema"]
    assert after["labels"] == before["labels"] == {"prod": {"version": 1, "serialized_value": '{"model": "large"}'}}
    assert after["latest_version"]["version"] == 1  # no version was created by the schema update
