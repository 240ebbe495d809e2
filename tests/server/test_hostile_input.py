"""Hostile and careless input against the real server on SQLite and PostgreSQL (issue 9, items 2, 3 and 6).

Regexes run on RE2 (linear time) off the event loop and are checked when written; NaN, Infinity and
overflowing numbers are refused wherever a value enters; chunked bodies over the limit get 413; segments
cannot grow without bound; unknown segment history is 404; the weights message states the actual sum.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest

from setpoint._server.services.context import ServiceContext
from setpoint._server.storage.records import LabelTarget
from tests.server.conftest import BACKENDS
from tests.server.support import Project, ServerProcess

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

HOSTILE = "(a+)+$"
EVIL_INPUT = "a" * 10_000 + "!"


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _regex_override(pattern: str, kind: str = "value-matches-regex") -> dict[str, Any]:
    return {"conditions": [{"kind": kind, "attribute": "x", "pattern": pattern}], "rollout": {"labels": {"on": 1.0}}}


def _variable(name: str, overrides: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {"on": {"target_type": "version", "serialized_value": "true"}}
    return {"name": name, "labels": labels, "rollout": {"labels": {}}, "overrides": overrides}


# --- Item 2: regexes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        (r"(a)\1", "backreference"),
        (r"(?=admin)", "lookahead"),
        (r"(?<!x)y", "lookbehind"),
        (r"\bword", "word boundaries"),
        ("[[:alpha:]]", "nested set"),
        (r"a{,3}", "{0,n}"),
        (r"\pL", "bad escape"),
    ],
)
def test_patterns_re2_or_python_cannot_run_alike_are_refused(
    server: ServerProcess, project: Project, pattern: str, construct: str
) -> None:
    name = _name("rx")
    with server.client(project) as client:
        response = client.post("/v1/variables/", json=_variable(name, [_regex_override(pattern)]))
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "overrides.0.conditions.0" in detail and construct in detail
        assert client.get(f"/v1/variables/{name}/").status_code == 404  # nothing stored
        # The same in a segment `matches` clause.
        clause = {"attribute": "email", "op": "matches", "values": [pattern]}
        segment = {"key": _name("seg"), "name": "S", "rules": [{"clauses": [clause]}]}
        refused = client.post("/v1/segments/", json=segment)
        assert refused.status_code == 400, refused.text
        assert construct in refused.json()["detail"] and "email" in refused.json()["detail"]


def test_hostile_pattern_resolves_in_linear_time_everywhere(server: ServerProcess, project: Project) -> None:
    name, segment = _name("guarded"), _name("evil")
    clause = {"attribute": "x", "op": "matches", "values": [HOSTILE]}
    with server.client(project) as client:
        seg = {"key": segment, "name": "Evil", "rules": [{"clauses": [clause]}]}
        client.post("/v1/segments/", json=seg).raise_for_status()
        in_segment = {"conditions": [{"kind": "in-segment", "segment": segment}], "rollout": {"labels": {"on": 1.0}}}
        body = _variable(name, [_regex_override(HOSTILE), in_segment])
        client.post("/v1/variables/", json=body).raise_for_status()
        for value, label in ((EVIL_INPUT, None), ("a" * 5000, "on")):
            answer = client.post("/v1/resolve/", json={"attributes": {"x": value}, "variables": [name]})
            assert answer.status_code == 200 and answer.json()["results"][0]["label"] == label
            ofrep = client.post(f"/ofrep/v1/evaluate/flags/{name}", json={"context": {"x": value}})
            assert ofrep.status_code == 200 and ofrep.json()["variant"] == (label or "code_default")


def test_healthz_answers_while_long_resolves_run(server: ServerProcess, project: Project) -> None:
    """Evaluation runs in worker threads: /healthz answers while resolves are still evaluating."""
    name, segment = _name("slow"), _name("many")
    # 4000 regexes against a ~900 kB attribute: linear, but seconds of work per request.
    clause = {"attribute": "x", "op": "matches", "values": [f"z[0-9]q{i}" for i in range(4000)]}
    with server.client(project) as client:
        seg = {"key": segment, "name": "Many", "rules": [{"clauses": [clause]}]}
        client.post("/v1/segments/", json=seg).raise_for_status()
        in_segment = {"conditions": [{"kind": "in-segment", "segment": segment}], "rollout": {"labels": {"on": 1.0}}}
        client.post("/v1/variables/", json=_variable(name, [in_segment])).raise_for_status()
    payload = {"attributes": {"x": "a" * 900_000}, "variables": [name]}
    finished: list[float] = []

    def resolve(path: str, body: dict[str, Any]) -> None:
        with server.client(project) as client:
            client.timeout = httpx.Timeout(300)
            assert client.post(path, json=body).status_code == 200
        finished.append(time.monotonic())

    ofrep_body = {"context": {"x": "a" * 900_000}}
    workers = [threading.Thread(target=resolve, args=("/v1/resolve/", payload)) for _ in range(2)]
    workers.append(threading.Thread(target=resolve, args=(f"/ofrep/v1/evaluate/flags/{name}", ofrep_body)))
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)  # the requests are in, being evaluated
        answered = []
        for _ in range(3):
            response = httpx.get(f"{server.url}/healthz", timeout=60)
            assert response.status_code == 200
            answered.append(time.monotonic())
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.join(300)
    assert len(finished) == 3
    # Every health check was answered before the first evaluation finished.
    assert max(answered) < min(finished), (answered, finished)


# --- Item 3: non-JSON numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e309", '{"a": [1, NaN]}'])
def test_non_finite_values_are_refused(server: ServerProcess, project: Project, text: str) -> None:
    name = _name("num")
    with server.client(project) as client:
        body = {"name": name, "labels": {"prod": {"target_type": "version", "serialized_value": text}}}
        response = client.post("/v1/variables/", json=body)
        assert 400 <= response.status_code < 500, response.text
        detail = response.json()["detail"]
        assert name in detail and "prod" in detail and "finite" in detail
        assert client.get(f"/v1/variables/{name}/").status_code == 404
        client.post("/v1/variables/", json={"name": name}).raise_for_status()
        version = client.post(f"/v1/variables/{name}/versions/", json={"serialized_value": text})
        assert version.status_code == 422 and name in version.json()["detail"], version.text
        validate = client.put(
            f"/v1/variables/{name}/labels/prod/", json={"target_type": "version", "serialized_value": text}
        )
        assert validate.status_code == 422 and "finite" in validate.json()["detail"]
        assert client.get(f"/v1/variables/{name}/versions/").json() == []


def _raw_post(server: ServerProcess, project: Project, path: str, text: str) -> httpx.Response:
    headers = {**project.headers(), "Content-Type": "application/json"}
    return httpx.post(f"{server.url}{path}", content=text.encode(), headers=headers, timeout=10)


def test_non_finite_numbers_in_bodies_are_refused(server: ServerProcess, project: Project) -> None:
    name = _name("body")
    labels = '{"on": {"target_type": "version", "serialized_value": "1"}}'
    cases = {
        "condition value": '[{"conditions": [{"kind": "value-greater-than", "attribute": "a", "value": NaN}],'
        ' "rollout": {"labels": {"on": 1}}}]',
        "condition values": '[{"conditions": [{"kind": "value-is-in", "attribute": "a", "values": [1, Infinity]}],'
        ' "rollout": {"labels": {"on": 1}}}]',
    }
    for what, overrides in cases.items():
        response = _raw_post(
            server, project, "/v1/variables/", f'{{"name": "{name}", "labels": {labels}, "overrides": {overrides}}}'
        )
        assert response.status_code == 422, (what, response.text)
        assert "NaN or infinite" in response.json()["detail"]
    schema = _raw_post(server, project, "/v1/variables/", f'{{"name": "{name}", "json_schema": {{"maximum": 1e999}}}}')
    assert schema.status_code == 422 and "NaN or infinite" in schema.json()["detail"]
    version = _raw_post(server, project, f"/v1/variables/{name}/versions/", '{"value": NaN}')
    assert version.status_code == 404  # nothing was created above
    clause = '{"attribute": "a", "op": "greaterThan", "values": [-Infinity]}'
    segment = _raw_post(
        server, project, "/v1/segments/", f'{{"key": "{name}", "name": "S", "rules": [{{"clauses": [{clause}]}}]}}'
    )
    assert segment.status_code == 400 and "NaN or infinite" in segment.json()["detail"]


def test_ofrep_answers_are_json_that_javascript_can_parse(server: ServerProcess, project: Project) -> None:
    name = _name("flag")
    with server.client(project) as client:
        body = {"name": name, "labels": {"on": {"target_type": "version", "serialized_value": "1.5e308"}}}
        client.post("/v1/variables/", json={**body, "rollout": {"labels": {"on": 1.0}}}).raise_for_status()
        single = client.post(f"/ofrep/v1/evaluate/flags/{name}", json={"context": {"x": 1}})
        assert single.status_code == 200 and single.json()["value"] == 1.5e308
        bulk = client.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u"}})
        assert bulk.status_code == 200

    def strict(constant: str) -> Any:
        raise AssertionError(f"{constant} in an OFREP answer")

    json.loads(bulk.text, parse_constant=strict)


def test_values_stored_before_the_check_never_break_ofrep(
    server: ServerProcess, project: Project, server_ctx: ServiceContext
) -> None:
    """A NaN written straight into storage (as an older version could): OFREP answers that flag with a
    PARSE_ERROR and JSON that JavaScript can parse, the rest of the project keeps working."""
    name, other = _name("legacy"), _name("fine")
    with server.client(project) as client:
        for variable in (name, other):
            labels = {"prod": {"target_type": "version", "serialized_value": "1"}}
            body = {"name": variable, "labels": labels, "rollout": {"labels": {"prod": 1.0}}}
            client.post("/v1/variables/", json=body).raise_for_status()
    with server_ctx.storage.write() as tx:
        stored = tx.get_variable(project.id, name)
        assert stored is not None
        version = tx.create_version(stored.id, "NaN", "legacy")
        tx.set_label(stored.id, "prod", LabelTarget("version", version=version.version), "legacy")
    with server.client(project) as client:
        single = client.post(f"/ofrep/v1/evaluate/flags/{name}", json={"context": {"targetingKey": "u"}})
        assert single.status_code == 400 and single.json()["errorCode"] == "PARSE_ERROR", single.text
        bulk = client.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u"}})
        assert bulk.status_code == 200

        def strict(constant: str) -> Any:
            raise AssertionError(f"{constant} in an OFREP answer")

        flags = {f["key"]: f for f in json.loads(bulk.text, parse_constant=strict)["flags"]}
        assert flags[name]["errorCode"] == "PARSE_ERROR" and flags[other]["value"] == 1
        assert client.get("/v1/variables/").status_code == 200
        # Writes elsewhere in the project still work; writing NaN again does not.
        assert client.post(f"/v1/variables/{other}/versions/", json={"serialized_value": "2"}).status_code == 201
        again = client.post(f"/v1/variables/{name}/versions/", json={"serialized_value": "NaN"})
        assert again.status_code == 422


def test_patterns_stored_before_the_check_never_match_and_never_break_the_project(
    server: ServerProcess, project: Project, server_ctx: ServiceContext
) -> None:
    """A lookbehind written straight into storage (as an older version could): the project is still served,
    that rule never matches (it would need a backtracking engine), and writing such a pattern is refused."""
    name = _name("legacy_rx")
    with server.client(project) as client:
        client.post("/v1/variables/", json=_variable(name, [])).raise_for_status()
    with server_ctx.storage.write() as tx:
        stored = tx.lock_variable(project.id, name)
        assert stored is not None
        fields = replace(stored.fields, overrides=[_regex_override("(?<=a)b")])
        tx.update_variable(stored, fields)
    with server.client(project) as client:
        assert client.get("/v1/variables/").status_code == 200
        answer = client.post("/v1/resolve/", json={"attributes": {"x": "ab"}, "variables": [name]})
        assert answer.status_code == 200 and answer.json()["results"][0]["label"] is None
        ofrep = client.post(f"/ofrep/v1/evaluate/flags/{name}", json={"context": {"x": "ab"}})
        assert ofrep.status_code == 200 and ofrep.json()["variant"] == "code_default"
        refused = client.put(f"/v1/variables/{name}/targeting/", json={"overrides": [_regex_override("(?<=a)b")]})
        assert refused.status_code == 422 and "lookbehind" in refused.json()["detail"]


# --- Item 6: limits and messages ---------------------------------------------------------------------------


def test_chunked_body_over_the_limit_gets_413(server: ServerProcess, project: Project) -> None:
    """A body without Content-Length, streamed in chunks past the 1 MiB limit."""

    def chunks() -> Any:
        yield b'{"name": "big", "description": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    headers = {**project.headers(), "Content-Type": "application/json"}
    for path in ("/v1/variables/", "/v1/segments/", "/ofrep/v1/evaluate/flags"):
        response = httpx.post(f"{server.url}{path}", content=chunks(), headers=headers, timeout=30)
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert response.status_code == 413, (path, response.text)
        assert "larger than the limit" in response.text


def test_segment_keys_are_capped(server: ServerProcess, project: Project) -> None:
    key = _name("grow")
    with server.client(project) as client:
        client.timeout = httpx.Timeout(120)
        client.post("/v1/segments/", json={"key": key, "name": "Grow"}).raise_for_status()
        batch = [f"user-{i}" for i in range(50_000)]
        for round_ in range(2):
            instruction = {
                "kind": "addIncludedTargets",
                "contextKind": "user",
                "values": [f"{round_}-{k}" for k in batch],
            }
            patch = client.patch(f"/v1/segments/{key}/", json={"instructions": [instruction]})
            assert patch.status_code == 200, patch.text
        over = client.patch(
            f"/v1/segments/{key}/",
            json={"instructions": [{"kind": "addExcludedTargets", "contextKind": "user", "values": ["one-more"]}]},
        )
        assert over.status_code == 400
        assert "100000" in over.json()["detail"] and "SETPOINT_MAX_SEGMENT_KEYS" in over.json()["detail"]
        stored = client.get(f"/v1/segments/{key}/").json()
        assert len(stored["included"]) == 100_000 and stored["excluded"] == []
        rules = [{"clauses": [{"attribute": "a", "op": "in", "values": [i]}]} for i in range(1001)]
        too_many = client.post("/v1/segments/", json={"key": _name("rules"), "name": "R", "rules": rules})
        assert too_many.status_code == 400 and "1000" in too_many.json()["detail"]


def test_unknown_segment_history_is_404(server: ServerProcess, project: Project) -> None:
    key = _name("gone")
    with server.client(project) as client:
        missing = client.get(f"/v1/segments/{key}/history/")
        assert missing.status_code == 404 and key in missing.json()["detail"]
        client.post("/v1/segments/", json={"key": key, "name": "Gone"}).raise_for_status()
        client.delete(f"/v1/segments/{key}/").raise_for_status()
        history = client.get(f"/v1/segments/{key}/history/")  # a deleted segment keeps its history
        assert history.status_code == 200 and [e["action"] for e in history.json()] == ["delete", "create"]


def test_weights_message_states_the_actual_sum(server: ServerProcess, project: Project) -> None:
    name = _name("weights")
    with server.client(project) as client:
        labels = {lb: {"target_type": "version", "serialized_value": "1"} for lb in ("a", "b")}
        client.post("/v1/variables/", json={"name": name, "labels": labels}).raise_for_status()
        for weights in ({"a": 1.0000001}, {"a": 0.5, "b": 0.5000001}):
            response = client.put(f"/v1/variables/{name}/targeting/", json={"rollout": {"labels": weights}})
            assert response.status_code == 422
            detail = response.json()["detail"]
            assert "100.00001%" in detail and "up to 100%," not in detail and "is 100%" not in detail
