"""Hostile and careless input gets a 4xx naming the field and the limit, never a 500, and nothing is stored:
integers past the database column range, JSON nested past the depth limit, lone surrogates and NUL
characters (issue 9, item 4). Against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from setpoint._server.services import input_limits
from setpoint._server.services.input_limits import DB_INT_MAX, MAX_JSON_DEPTH
from tests.server.conftest import BACKENDS
from tests.server.support import Project, ServerProcess

on_both_backends = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

TOO_BIG = [DB_INT_MAX + 1, 2**63, 10**30]
JSON = {"content-type": "application/json"}


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.fixture
def client(server: ServerProcess, project: Project) -> Iterator[httpx.Client]:
    """A read,write client of a project holding variable ``v`` (version 1, label ``a``) and segment ``s``."""
    with server.client(project) as c:
        body = {
            "name": "v",
            "labels": {"a": {"target_type": "version", "serialized_value": "1"}},
            "rollout": {"labels": {"a": 1.0}},
        }
        c.post("/v1/variables/", json=body).raise_for_status()
        c.post("/v1/segments/", json={"key": "s", "name": "S"}).raise_for_status()
        yield c


def _state(c: httpx.Client) -> Any:
    """Everything a refused request must leave untouched."""
    return {
        "variables": c.get("/v1/variables/").json(),
        "versions": c.get("/v1/variables/v/versions/").json(),
        "segments": c.get("/v1/segments/").json(),
        "audit": c.get("/v1/audit/").json(),
        "keys": c.get("/v1/api-keys/").json(),
    }


def _refused(response: httpx.Response, field: str, limit: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert field in detail, detail
    assert limit in detail, detail


@on_both_backends
@pytest.mark.parametrize("number", TOO_BIG)
def test_integers_past_the_column_range_are_refused_naming_the_parameter(client: httpx.Client, number: int) -> None:
    before = _state(client)
    limit = str(DB_INT_MAX)
    _refused(client.post(f"/v1/variables/v/versions/{number}/restore/"), "path.version", limit)
    _refused(client.get("/v1/variables/v/diff/", params={"from": 1, "to": number}), "query.to", limit)
    _refused(client.get("/v1/variables/v/diff/", params={"from": number, "to": 1}), "query.from", limit)
    _refused(client.delete(f"/v1/api-keys/{number}/"), "path.key_id", limit)
    label = {"target_type": "version", "version": number}
    _refused(client.put("/v1/variables/v/labels/b/", json=label), "body.version", limit)
    created = {"name": "w", "labels": {"a": label}}
    _refused(client.post("/v1/variables/", json=created), "body.labels.a.version", limit)
    stale = client.post("/v1/variables/v/versions/", json={"value": 2}, headers={"If-Match": f'"{number}"'})
    assert stale.status_code == 422 and "if-match" in stale.json()["detail"].lower(), stale.text
    assert _state(client) == before
    # The largest accepted number is an ordinary "not found".
    assert client.post(f"/v1/variables/v/versions/{DB_INT_MAX}/restore/").status_code == 404
    assert client.delete(f"/v1/api-keys/{DB_INT_MAX}/").status_code == 404


@on_both_backends
def test_json_nested_past_the_limit_is_refused_naming_the_location(client: httpx.Client) -> None:
    before = _state(client)
    limit = f"{MAX_JSON_DEPTH} levels"
    deep = _nested(MAX_JSON_DEPTH + 1)
    very_deep = _nested(5000)  # past Python's recursion limit
    for value in (deep, very_deep):
        _refused(client.post("/v1/variables/v/versions/", json={"serialized_value": value}), "serialized_value", limit)
        raw = '{"value": ' + value + "}"
        _refused(client.post("/v1/variables/v/versions/", content=raw, headers=JSON), "body", limit)
    schema = '{"type": "object"' + ', "properties": {"a": {"type": "object"' * 300 + "}}" * 300 + "}"
    raw_variable = '{"name": "deep_schema", "json_schema": ' + schema + "}"
    _refused(client.post("/v1/variables/", content=raw_variable, headers=JSON), "body.json_schema.properties.a", limit)
    condition = '{"kind": "value-is-in", "attribute": "plan", "values": ' + deep + "}"
    targeting = '{"rollout": {"labels": {"a": 1.0}}, "overrides": [{"conditions": [' + condition + "]}]}"
    response = client.put("/v1/variables/v/targeting/", content=targeting, headers=JSON)
    _refused(response, "body.overrides.0.conditions.0.values.0", limit)
    clause = '{"attribute": "plan", "op": "in", "values": ' + deep + "}"
    segment = '{"key": "deep", "name": "D", "rules": [{"clauses": [' + clause + "]}]}"
    _refused(client.post("/v1/segments/", content=segment, headers=JSON), "body.rules.0.clauses.0.values", limit)
    resolve = '{"attributes": {"plan": ' + very_deep + "}}"
    _refused(client.post("/v1/resolve/", content=resolve, headers=JSON), "body", limit)
    assert _state(client) == before


@on_both_backends
def test_json_at_the_depth_limit_is_accepted(client: httpx.Client) -> None:
    at_limit = _nested(MAX_JSON_DEPTH)
    created = client.post("/v1/variables/v/versions/", json={"serialized_value": at_limit})
    assert created.status_code == 201, created.text
    assert client.get("/v1/variables/").json()["variables"]["v"]["latest_version"]["serialized_value"] == at_limit


@on_both_backends
@pytest.mark.parametrize(
    ("text", "problem"), [("a\ud800b", "lone UTF-16 surrogate"), ("a\x00b", "NUL character")], ids=["surrogate", "nul"]
)
def test_unstorable_text_is_refused_naming_the_field(client: httpx.Client, text: str, problem: str) -> None:
    before = _state(client)
    quoted = json.dumps(text)  # ASCII-only JSON: "\ud800" / "\u0000" escapes, as a hostile client sends them

    def post(path: str, body: str) -> httpx.Response:
        return client.post(path, content=body, headers=JSON)

    described = post("/v1/variables/v/versions/", '{"value": 1, "description": ' + quoted + "}")
    _refused(described, "body.description", problem)
    _refused(post("/v1/variables/v/versions/", '{"value": ' + quoted + "}"), "body.value", problem)
    _refused(post("/v1/variables/v/versions/", '{"value": {' + quoted + ": 1}}"), "body.value", problem)
    serialized = json.dumps({"serialized_value": json.dumps({"k": text})})
    _refused(post("/v1/variables/v/versions/", serialized), "serialized_value.k", problem)
    _refused(post("/v1/variables/", '{"name": ' + quoted + "}"), "body.name", problem)
    _refused(post("/v1/segments/", '{"key": "t", "name": ' + quoted + "}"), "body.name", problem)
    _refused(post("/v1/resolve/", '{"targeting_key": ' + quoted + "}"), "body.targeting_key", problem)
    key_name = post("/v1/api-keys/", '{"name": ' + quoted + ', "scopes": ["read"]}')
    _refused(key_name, "body.name", problem)
    assert _state(client) == before


@on_both_backends
def test_nul_in_the_url_or_a_form_is_refused(client: httpx.Client, server: ServerProcess) -> None:
    before = _state(client)
    _refused(client.get("/v1/variables/a%00b/"), "NUL", "URL path", status=400)
    _refused(client.put("/v1/variables/v/labels/a%00/", json={"target_type": "latest"}), "NUL", "URL path", 400)
    _refused(client.get("/v1/audit/", params={"name": "a\x00b"}), "NUL", "query string", status=400)
    _refused(client.get("/v1/segments/s%00/history/"), "NUL", "URL path", status=400)
    form = httpx.post(
        f"{server.url}/login", data={"username": "admin\x00", "password": "x", "login_csrf": "t"}, cookies={}
    )
    _refused(form, "NUL", "form field", status=400)
    assert _state(client) == before


@on_both_backends
def test_the_input_guard_leaves_ordinary_requests_alone(client: httpx.Client) -> None:
    unicode_text = "naïve \u2013 日本語 ✓ \U0001f600"
    created = client.post("/v1/variables/v/versions/", json={"value": {"text": unicode_text}, "description": "é"})
    assert created.status_code == 201, created.text
    assert json.loads(created.json()["serialized_value"]) == {"text": unicode_text}
    broken = client.post("/v1/variables/v/versions/", content=b"{not json", headers=JSON)
    assert broken.status_code == 422, broken.text  # the route's own "not JSON" answer, not the guard's


def test_check_json_names_the_first_offending_location() -> None:
    with pytest.raises(input_limits.InputLimitError, match=r"^body\.a\.1\.b contains a NUL"):
        input_limits.check_json({"a": [1, {"b": "x\x00"}]}, "body")
    with pytest.raises(input_limits.InputLimitError, match="more than 64 levels"):
        input_limits.loads(_nested(10_000), "value")
    input_limits.check_json({"a": [_nested(3)] * 3, "b": "ok"}, "body")


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ('{"emoji": "\\ud83d\\ude00"}', True),  # a surrogate pair, as json.dumps writes an emoji
        ('{"text": "a\\\\u0000"}', True),  # an escaped backslash, then the letters u0000
        ('{"text": "\\u0000"}', False),
        ('["\\udc00\\ud800"]', False),  # reversed: two lone surrogates
        ('{"a": "[[[[[[[["}', True),  # brackets inside strings do not nest
        ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, True),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), False),
        ('{"a":' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH, True),
        ('{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1), False),
    ],
)
def test_loads_agrees_with_the_full_walk(text: str, accepted: bool) -> None:
    if accepted:
        assert input_limits.loads(text, "body") == json.loads(text)
    else:
        with pytest.raises(input_limits.InputLimitError):
            input_limits.loads(text, "body")
