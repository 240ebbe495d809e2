"""The I/O-free parts of the remote client: error mapping, request bodies, SSE parsing, backoff, options."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent
from pydantic import BaseModel

from setpoint._remote.client import check, fetch_headers, is_transient, read_fetch, unreachable, variable_body
from setpoint._remote.diff import plan_config, plan_push, plan_types
from setpoint._remote.options import RemoteOptions
from setpoint._remote.report import ValidationReport
from setpoint._remote.sse import Backoff, change_of
from setpoint.config import VariablesConfig
from setpoint.exceptions import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ServerResponseError,
    ServerUnreachableError,
)


def response(status: int, body: object = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return httpx.Response(status, content=content, headers=headers, request=httpx.Request("GET", "http://x/"))


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (409, ConflictError), (412, ConflictError)],
)
def test_error_statuses_map_to_exceptions(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        check(response(status, {"detail": "nope"}), "doing it")
    assert "doing it" in str(info.value) and "nope" in str(info.value)


def test_other_errors_carry_the_server_message() -> None:
    with pytest.raises(ServerResponseError, match=r"answered 422: label 'x' is invalid") as info:
        check(response(422, {"detail": "label 'x' is invalid"}), "pushing")
    assert info.value.status_code == 422
    with pytest.raises(ServerResponseError, match="Bad Gateway"):
        check(response(502, b""), "fetching")


def test_read_fetch() -> None:
    not_modified = read_fetch(response(304, ETag='"abc"'))
    assert not_modified.not_modified and not_modified.data is None
    fetched = read_fetch(response(200, {"variables": {}}, ETag='"v2"'))
    assert fetched.data == {"variables": {}} and fetched.etag == '"v2"'
    with pytest.raises(ServerResponseError, match="not JSON"):
        read_fetch(response(200, b"{oops"))
    assert fetch_headers(None) == {} and fetch_headers('"e"') == {"If-None-Match": '"e"'}


def test_transient_errors() -> None:
    assert is_transient(unreachable("http://x", OSError("refused")))
    assert is_transient(ServerResponseError("x", status_code=503))
    assert is_transient(ServerResponseError("x", status_code=429))
    assert not is_transient(AuthenticationError("x", status_code=401))
    assert isinstance(unreachable("http://x", OSError()), ServerUnreachableError)


def test_variable_body_has_label_targets() -> None:
    config = VariablesConfig.model_validate(
        {
            "variables": {
                "v": {
                    "name": "v",
                    "labels": {
                        "a": {"version": 3, "serialized_value": "1"},
                        "b": {"ref": "a"},
                        "c": {"ref": "latest"},
                        "d": {"ref": "code_default"},
                    },
                    "rollout": {"labels": {"a": 0.5}},
                    "overrides": [
                        {
                            "conditions": [{"kind": "value-equals", "attribute": "p", "value": 1, "negate": True}],
                            "rollout": {"labels": {"b": 1.0}},
                        }
                    ],
                }
            }
        }
    )
    body = variable_body(config.variables["v"])
    assert body["labels"] == {
        "a": {"target_type": "version", "version": 3, "serialized_value": "1"},
        "b": {"target_type": "label", "target_label": "a"},
        "c": {"target_type": "latest"},
        "d": {"target_type": "code_default"},
    }
    assert body["overrides"][0]["conditions"][0] == {
        "kind": "value-equals",
        "attribute": "p",
        "value": 1,
        "negate": True,
    }
    assert "json_schema" not in body and body["description"] is None


def test_change_of_sse_events() -> None:
    assert change_of(ServerSentEvent(data=json.dumps({"event": "updated", "name": "x"}))) == "updated"
    assert change_of(ServerSentEvent(event="deleted", data="")) == "deleted"
    assert change_of(ServerSentEvent(data="not json")) is None
    assert change_of(ServerSentEvent(data=json.dumps({"event": "ping"}))) is None


def test_backoff_is_capped_jittered_and_resets() -> None:
    backoff = Backoff(base=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert 0.25 <= delays[0] <= 0.5
    assert 0.5 <= delays[1] <= 1.0
    assert all(2.0 <= d <= 4.0 for d in delays[4:])
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_options_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SETPOINT_URL", raising=False)
    monkeypatch.delenv("SETPOINT_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"pass RemoteOptions\(url=\.\.\.\) or set SETPOINT_URL$"):
        RemoteOptions().resolved_url()  # the SDK names its own way (the CLI names --url: tests/remote/test_cli.py)
    with pytest.raises(ConfigurationError, match=r"pass RemoteOptions\(api_key=\.\.\.\) or set SETPOINT_API_KEY$"):
        RemoteOptions(url="http://x").resolved_api_key()
    monkeypatch.setenv("SETPOINT_URL", "http://env:1/")
    monkeypatch.setenv("SETPOINT_API_KEY", "sp_env")
    options = RemoteOptions(polling_interval=timedelta(seconds=5))
    assert options.resolved_url() == "http://env:1" and options.resolved_api_key() == "sp_env"
    assert "sp_env" not in repr(RemoteOptions(api_key="sp_env"))


class Shape(BaseModel):
    size: int


class FakeVariable:
    def __init__(self, name: str, tp: Any, default: object, description: str | None = None) -> None:
        from pydantic import TypeAdapter

        self.name = name
        self.type_adapter = TypeAdapter(tp)
        self.default = default
        self.description = description


def test_plan_push_without_server() -> None:
    server = VariablesConfig.model_validate(
        {
            "variables": {
                "shape": {
                    "name": "shape",
                    "json_schema": {"type": "object"},
                    "labels": {"big": {"version": 1, "serialized_value": '{"size": "huge"}'}},
                },
                "old": {"name": "old"},
            }
        }
    )
    plan = plan_push([FakeVariable("shape", Shape, Shape(size=1)), FakeVariable("n", int, 3)], server)
    kinds = {c.name: c.kind for c in plan.changes}
    assert kinds == {"shape": "update_schema", "n": "create"}
    assert [(i.variable, i.label) for i in plan.breaking] == [("shape", "big")]
    assert plan.server_only == ["old"]
    markup = plan.to_markup()
    assert "+ n" in markup and "~ shape" in markup and "? old" in markup


def test_plan_config_ignores_informational_versions() -> None:
    local = VariablesConfig.model_validate(
        {"variables": {"v": {"name": "v", "labels": {"a": {"version": 1, "serialized_value": '{"x": 1}'}}}}}
    )
    server = VariablesConfig.model_validate(
        {"variables": {"v": {"name": "v", "labels": {"a": {"version": 7, "serialized_value": '{ "x" : 1 }'}}}}}
    )
    plan = plan_config(local, server, "merge")
    assert not plan.has_changes and plan.unchanged == ["v"]


def test_plan_types_names() -> None:
    plan = plan_types([Shape, (int, "count")], {}, VariablesConfig())
    assert plan.creates == ["Shape", "count"]
    assert plan.types[0].source_hint is not None and plan.types[0].source_hint.endswith("Shape")


def test_empty_report_is_valid() -> None:
    report = ValidationReport(variables_checked=0)
    assert report.is_valid and "Validation passed" in str(report)


def test_options_durations() -> None:
    options = RemoteOptions(url="http://x", api_key="k", polling_interval=5, first_fetch_timeout=0)  # type: ignore[arg-type]
    assert options.polling_interval == timedelta(seconds=5) and options.first_fetch_timeout == timedelta(0)
    with pytest.raises(ConfigurationError, match="polling_interval"):
        RemoteOptions(polling_interval=timedelta(0))
    with pytest.raises(ConfigurationError, match="request_timeout"):
        RemoteOptions(request_timeout="10")  # type: ignore[arg-type]


def test_request_bodies_match_the_logfire_sdk() -> None:
    """For what both understand, our write bodies are the Logfire SDK's, key for key."""
    from logfire.variables.config import VariablesConfig as LogfireConfig
    from logfire.variables.remote import LogfireRemoteVariableProvider

    data = {
        "variables": {
            "agent": {
                "name": "agent",
                "description": "d",
                "labels": {
                    "a": {"version": 2, "serialized_value": '{"x": 1}'},
                    "b": {"ref": "a"},
                    "c": {"ref": "latest"},
                    "d": {"ref": "code_default"},
                },
                "rollout": {"labels": {"a": 0.25, "b": 0.5}},
                "overrides": [
                    {
                        "conditions": [
                            {"kind": "value-equals", "attribute": "plan", "value": "enterprise"},
                            {"kind": "value-is-in", "attribute": "country", "values": ["US", "UK"]},
                            {"kind": "value-matches-regex", "attribute": "email", "pattern": "@acme\\\\.com$"},
                            {"kind": "key-is-present", "attribute": "beta"},
                        ],
                        "rollout": {"labels": {"c": 1.0}},
                    }
                ],
                "json_schema": {"type": "object"},
                "aliases": ["old_agent"],
                "example": '{"x": 0}',
            }
        }
    }
    logfire_provider = object.__new__(LogfireRemoteVariableProvider)
    theirs = logfire_provider._config_to_api_body(LogfireConfig.model_validate(data).variables["agent"])
    ours = variable_body(VariablesConfig.model_validate(data).variables["agent"])
    assert ours == theirs


def test_constraint_changes_say_narrows_or_widens() -> None:
    from setpoint._remote.diff import constraint_changes

    server = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 3, "maxLength": 40},
            "level": {"type": "string", "enum": ["low", "high"]},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    code = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 5},
            "level": {"type": "string", "enum": ["low", "high", "max"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "level"],
    }
    found = {(c.path, c.keyword): c.direction for c in constraint_changes(server, code)}
    assert found == {
        ("(value)", "required"): "narrows",
        ("(value)", "additionalProperties"): "widens",
        ("name", "minLength"): "narrows",
        ("name", "maxLength"): "widens",
        ("level", "enum"): "widens",
        ("tags[]", "pattern"): "widens",
    }
    assert constraint_changes(server, server) == []
    described = [c.describe() for c in constraint_changes(server, code)]
    assert "name: minLength 3 -> 5" in described and "name: maxLength 40 -> (none)" in described
