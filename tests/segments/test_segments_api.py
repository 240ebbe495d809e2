"""The segments APIs: the LaunchDarkly-shaped ``/api/v2/segments`` and the native ``/v1/segments/``: auth,
project isolation, status codes, listings, semantic patch, revisions, history, deletion rules, the snapshot."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from setpoint.config import Segment
from tests.segments.support import SEMANTIC_PATCH, App, ld_create, ld_patch, ld_url, served_config
from tests.server.support import Project, make_project


def _variable_using(segment: str, name: str = "flag", kind: str = "in-segment") -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"on": {"target_type": "version", "serialized_value": "true"}},
        "rollout": {"labels": {}},
        "overrides": [{"conditions": [{"kind": kind, "segment": segment}], "rollout": {"labels": {"on": 1.0}}}],
    }


def test_ld_auth_accepts_a_bare_key_or_bearer_and_answers_ld_shaped_errors(app: App, project: Project) -> None:
    url = ld_url(project)
    assert app.client.get(url, headers={"Authorization": project.rw_key}).status_code == 200
    assert app.client.get(url, headers={"Authorization": f"bearer {project.rw_key}"}).status_code == 200
    assert app.client.get(url, headers={"Authorization": f"Bearer {project.ro_key}"}).status_code == 200
    missing = app.client.get(url)
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    wrong = app.client.get(url, headers={"Authorization": "sp_not_a_key_at_all_000000"})
    assert wrong.status_code == 401
    read_only = app.client.post(url, json={"key": "x", "name": "x"}, headers={"Authorization": project.ro_key})
    assert read_only.status_code == 403 and read_only.json()["code"] == "forbidden"


def test_ld_never_shows_another_projects_segments(app: App, project: Project) -> None:
    other = app.other_project()
    assert ld_create(app, other, "secret", included=["ceo"]).status_code == 201
    for method, url in (("GET", ld_url(other)), ("GET", ld_url(other, "secret")), ("DELETE", ld_url(other, "secret"))):
        response = app.client.request(method, url, headers={"Authorization": project.rw_key})
        assert response.status_code == 404, (method, url)
        assert "ceo" not in response.text
    assert app.client.get(ld_url(project), headers={"Authorization": project.rw_key}).json()["items"] == []
    assert "secret" in served_config(app, other).segments


def test_ld_create_conflict_get_list_limit_delete(app: App, project: Project) -> None:
    created = ld_create(app, project, "beta", description="d", tags=["t1", "t2"])
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in ("key", "name", "description", "tags", "version", "rules")} == {
        "key": "beta",
        "name": "beta",
        "description": "d",
        "tags": ["t1", "t2"],
        "version": 1,
        "rules": [],
    }
    assert body["included"] == [] and body["excludedContexts"] == [] and isinstance(body["creationDate"], int)
    conflict = ld_create(app, project, "beta")
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"
    for key in ("gamma", "alpha"):
        ld_create(app, project, key)
    auth = {"Authorization": project.rw_key}
    listing = app.client.get(ld_url(project), headers=auth).json()
    assert [s["key"] for s in listing["items"]] == ["alpha", "beta", "gamma"] and listing["totalCount"] == 3
    limited = app.client.get(ld_url(project), params={"limit": 2, "offset": 1}, headers=auth).json()
    assert [s["key"] for s in limited["items"]] == ["beta", "gamma"]
    assert app.client.get(ld_url(project, "beta"), headers=auth).json()["tags"] == ["t1", "t2"]
    # Setpoint projects have one environment: any environment key names the same segments.
    assert app.client.get(ld_url(project, "beta", environment="staging"), headers=auth).status_code == 200
    deleted = app.client.request("DELETE", ld_url(project, "beta"), headers=auth, json={})
    assert deleted.status_code == 204 and deleted.content == b""
    assert app.client.get(ld_url(project, "beta"), headers=auth).status_code == 404
    assert app.client.request("DELETE", ld_url(project, "beta"), headers=auth).status_code == 404


def test_ld_create_rejects_bad_bodies_naming_the_problem(app: App, project: Project) -> None:
    auth = {"Authorization": project.rw_key}
    cases = [
        ({"name": "no key"}, "'key' is required"),
        ({"key": "k", "name": "n", "color": "red"}, "unknown field(s) color"),
        ({"key": "k", "name": "n", "unbounded": True}, "unbounded"),
        ({"key": "bad key!", "name": "n"}, "key"),
        ({"key": "k", "name": "n", "rules": [{"clauses": [{"attribute": "a", "op": "near", "values": [1]}]}]}, "near"),
    ]
    for body, message in cases:
        response = app.client.post(ld_url(project), json=body, headers=auth)
        assert response.status_code == 400 and message in response.json()["message"], (body, response.text)
    not_json = app.client.post(ld_url(project), content=b"{nope", headers={**auth, "Content-Type": "application/json"})
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]


def test_ld_semantic_patch_instructions(app: App, project: Project) -> None:
    assert ld_create(app, project, "seg", tags=["a"]).status_code == 201
    clause = {"attribute": "plan", "op": "in", "values": ["pro"], "contextKind": "user", "negate": False}
    body = ld_patch(
        app,
        project,
        "seg",
        [
            {"kind": "addRule", "clauses": [clause], "description": "pro plan"},
            {"kind": "addRule", "clauses": [{**clause, "values": ["team"]}]},
            {"kind": "addIncludedTargets", "contextKind": "user", "values": ["u1", "u2", "u1"]},
            {"kind": "addExcludedTargets", "contextKind": "user", "values": ["u3"]},
            {"kind": "updateName", "value": "Segment"},
            {"kind": "updateDescription", "value": "about"},
            {"kind": "addTags", "values": ["b", "a"]},
        ],
    ).json()
    assert body["name"] == "Segment" and body["description"] == "about" and body["tags"] == ["a", "b"]
    assert body["included"] == ["u1", "u2"] and body["excluded"] == ["u3"] and body["version"] == 2
    first, second = body["rules"]
    assert first["description"] == "pro plan" and first["clauses"] == [clause]
    body = ld_patch(
        app,
        project,
        "seg",
        [
            {"kind": "removeRule", "ruleId": first["_id"]},
            {"kind": "removeIncludedTargets", "contextKind": "user", "values": ["u1"]},
            {"kind": "removeExcludedTargets", "contextKind": "user", "values": ["u3"]},
            {"kind": "removeTags", "values": ["a"]},
            {"kind": "addClauses", "ruleId": second["_id"], "clauses": [{"attribute": "age", "op": "lessThan",
                                                                          "values": [18], "negate": True}]},
        ],
    ).json()  # fmt: skip
    assert [r["_id"] for r in body["rules"]] == [second["_id"]]
    assert body["rules"][0]["clauses"][1] == {
        "attribute": "age",
        "op": "lessThan",
        "values": [18],
        "contextKind": "user",
        "negate": True,
    }
    assert body["included"] == ["u2"] and body["excluded"] == [] and body["tags"] == ["b"]
    response = ld_patch(app, project, "seg", [{"kind": "removeRule", "ruleId": "nope"}])
    assert response.status_code == 400 and "no rule with ruleId 'nope'" in response.json()["message"]
    assert ld_patch(app, project, "ghost", [{"kind": "updateName", "value": "x"}]).status_code == 404


def test_ld_patch_requires_semantic_patch_and_a_matching_environment(app: App, project: Project) -> None:
    assert ld_create(app, project, "seg").status_code == 201
    auth = {"Authorization": project.rw_key}
    body = {"environmentKey": "production", "instructions": [{"kind": "updateName", "value": "x"}]}
    plain = app.client.patch(ld_url(project, "seg"), json=body, headers=auth)  # taken as a JSON Patch
    assert plain.status_code == 400 and "semanticpatch" in plain.json()["message"]
    headers = {**auth, "Content-Type": SEMANTIC_PATCH}
    other_env = {**body, "environmentKey": "test"}
    response = app.client.patch(ld_url(project, "seg"), content=json.dumps(other_env), headers=headers)
    assert response.status_code == 400 and "environmentKey 'test'" in response.json()["message"]
    empty = {"environmentKey": "production", "instructions": []}
    response = app.client.patch(ld_url(project, "seg"), content=json.dumps(empty), headers=headers)
    assert response.status_code == 400


def test_a_segment_in_use_cannot_be_deleted(app: App, project: Project) -> None:
    for key in ("used", "parent"):
        assert ld_create(app, project, key).status_code == 201
    match = {"attribute": "segmentMatch", "op": "segmentMatch", "values": ["used"]}
    assert ld_patch(app, project, "parent", [{"kind": "addRule", "clauses": [match]}]).status_code == 200
    created = app.client.post(
        "/v1/variables/", json=_variable_using("used", kind="not-in-segment"), headers=project.headers()
    )
    assert created.status_code == 201, created.text
    refused = app.client.delete(ld_url(project, "used"), headers={"Authorization": project.rw_key})
    assert refused.status_code == 409
    assert "variable(s) flag and segment(s) parent" in refused.json()["message"]
    native = app.client.delete("/v1/segments/used/", headers=project.headers())
    assert native.status_code == 409 and native.json()["errors"] == [{"variables": ["flag"], "segments": ["parent"]}]
    assert "used" in served_config(app, project).segments


def test_native_crud_revisions_history_and_snapshot(app: App, project: Project) -> None:
    h = project.headers()
    etag_before = app.client.get("/v1/variables/", headers=h).headers["etag"]
    doc = {"key": "pro", "name": "Pro", "tags": ["x"], "rules": [{"clauses": [{"attribute": "plan", "op": "in",
                                                                               "values": ["pro"]}]}]}  # fmt: skip
    created = app.client.post("/v1/segments/", json=doc, headers=h)
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    assert created.json()["rules"][0]["clauses"][0]["context_kind"] == "user"
    assert app.client.post("/v1/segments/", json=doc, headers=h).status_code == 409
    assert app.client.get("/v1/variables/", headers=h).headers["etag"] != etag_before
    assert served_config(app, project).segments["pro"].rules[0].clauses[0].values == ["pro"]
    served = app.client.get("/v1/variables/", headers=h).json()["segments"]["pro"]
    assert set(served) == set(Segment.model_fields) - {"salt"}  # no bookkeeping (created_at); an empty salt is left out

    stale = app.client.put("/v1/segments/pro/", json={**doc, "name": "P"}, headers={**h, "If-Match": '"7"'})
    assert stale.status_code == 412
    replaced = app.client.put("/v1/segments/pro/", json={**doc, "name": "P"}, headers={**h, "If-Match": '"1"'})
    assert replaced.status_code == 200 and replaced.json()["name"] == "P" and replaced.json()["revision"] == 2
    renamed = app.client.put("/v1/segments/pro/", json={**doc, "key": "other"}, headers=h)
    assert renamed.status_code == 400
    patched = app.client.patch(
        "/v1/segments/pro/", json={"instructions": [{"kind": "addIncludedUsers", "values": ["vip"]}]}, headers=h
    )
    assert patched.status_code == 200 and patched.json()["included"] == ["vip"]
    assert [s["key"] for s in app.client.get("/v1/segments/", headers=h).json()] == ["pro"]
    assert app.client.get("/v1/segments/pro/", headers=h).headers["etag"] == '"3"'

    assert app.client.delete("/v1/segments/pro/", headers=h).status_code == 204
    assert app.client.get("/v1/segments/pro/", headers=h).status_code == 404
    history = app.client.get("/v1/segments/pro/history/", headers=h).json()
    assert [e["action"] for e in history] == ["delete", "update", "update", "create"]
    assert history[0]["before"]["included"] == ["vip"] and history[0]["after"] is None
    assert history[-1]["actor"].startswith("api_key:")
    assert "segments" not in served_config(app, project).model_dump(exclude_defaults=True)
    read_only = app.client.post("/v1/segments/", json=doc, headers=project.headers(project.ro_key))
    assert read_only.status_code == 403


def test_ld_json_patch(app: App, project: Project) -> None:
    clause = {"attribute": "plan", "op": "in", "values": ["pro"], "contextKind": "user", "negate": False}
    assert ld_create(app, project, "jp", tags=["a"], rules=[{"clauses": [clause]}]).status_code == 201
    auth = {"Authorization": project.rw_key}
    ops = [
        {"op": "replace", "path": "/name", "value": "JSON patched"},
        {"op": "add", "path": "/tags/-", "value": "b"},
        {"op": "add", "path": "/included/0", "value": "u1"},
        {"op": "test", "path": "/rules/0/clauses/0/op", "value": "in"},
        {"op": "replace", "path": "/rules/0/clauses/0/values", "value": ["pro", "team"]},
    ]
    response = app.client.patch(ld_url(project, "jp"), json=ops, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["tags"], body["included"]) == ("JSON patched", ["a", "b"], ["u1"])
    assert body["rules"][0]["clauses"][0]["values"] == ["pro", "team"] and body["version"] == 2
    wrapped = {"patch": [{"op": "remove", "path": "/tags/0"}], "comment": "drop a"}
    assert app.client.patch(ld_url(project, "jp"), json=wrapped, headers=auth).json()["tags"] == ["b"]
    for bad, message in (
        ([{"op": "replace", "path": "/key", "value": "other"}], "read-only field(s) cannot be patched: key"),
        ([{"op": "test", "path": "/name", "value": "nope"}], "test failed"),
        ([{"op": "replace", "path": "/missing", "value": 1}], "'missing' does not exist"),
        ([{"op": "frobnicate", "path": "/name"}], "unknown op 'frobnicate'"),
        ([{"op": "add", "path": "/rules/0/clauses/-", "value": {"attribute": "a", "op": "bad", "values": [1]}}], "bad"),
    ):
        response = app.client.patch(ld_url(project, "jp"), json=bad, headers=auth)
        assert response.status_code == 400 and message in response.json()["message"], (bad, response.text)


def test_concurrent_semantic_patches_all_apply(app: App, project: Project) -> None:
    assert ld_create(app, project, "busy").status_code == 201
    keys = [f"user-{i}" for i in range(12)]

    def add(key: str) -> int:
        instruction = {"kind": "addIncludedTargets", "contextKind": "user", "values": [key]}
        return ld_patch(app, project, "busy", [instruction]).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(add, keys)) == [200] * len(keys)
    segment = served_config(app, project).segments["busy"]
    assert sorted(segment.included) == sorted(keys)
    history = app.client.get("/v1/segments/busy/history/", headers=project.headers()).json()
    assert len(history) == 1 + len(keys)


def test_ld_list_filter_and_sort(app: App, project: Project) -> None:
    ld_create(app, project, "b-seg", name="Beta users", tags=["beta", "ai"])
    ld_create(app, project, "a-seg", name="Alpha users", tags=["beta"])
    ld_create(app, project, "c-seg", name="Other", tags=["ai"])
    auth = {"Authorization": project.rw_key}

    def keys(**params: str) -> list[str]:
        response = app.client.get(ld_url(project), params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [s["key"] for s in response.json()["items"]]

    assert keys(filter="tags:beta") == ["a-seg", "b-seg"]
    assert keys(filter="tags:beta+ai") == ["b-seg"]
    assert keys(filter="query:users") == ["a-seg", "b-seg"]
    assert keys(filter="keys:c-seg+a-seg") == ["a-seg", "c-seg"]
    assert keys(sort="-key") == ["c-seg", "b-seg", "a-seg"]
    assert keys(sort="name") == ["a-seg", "b-seg", "c-seg"]
    bad = app.client.get(ld_url(project), params={"filter": "color:red"}, headers=auth)
    assert bad.status_code == 400 and "unknown filter field 'color'" in bad.json()["message"]


def test_restore_an_earlier_state_from_the_history(app: App, project: Project) -> None:
    h = project.headers()
    doc = {"key": "beta", "name": "Beta", "included": ["ann"]}
    assert app.client.post("/v1/segments/", json=doc, headers=h).status_code == 201
    changed = {**doc, "name": "Beta testers", "included": ["bob"], "rules": [{"clauses": [
        {"attribute": "plan", "op": "in", "values": ["pro"]}]}]}  # fmt: skip
    assert app.client.put("/v1/segments/beta/", json=changed, headers=h).status_code == 200
    history = app.client.get("/v1/segments/beta/history/", headers=h).json()
    created = history[-1]
    assert created["action"] == "create"

    stale = app.client.post(
        "/v1/segments/beta/restore/", json={"entry_id": created["id"]}, headers={**h, "If-Match": '"1"'}
    )
    assert stale.status_code == 412  # someone saved since revision 1: nothing restored
    assert app.client.get("/v1/segments/beta/", headers=h).json()["included"] == ["bob"]
    restored = app.client.post(
        "/v1/segments/beta/restore/", json={"entry_id": created["id"]}, headers={**h, "If-Match": '"2"'}
    )
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert (body["name"], body["included"], body["rules"], body["revision"]) == ("Beta", ["ann"], [], 3)
    assert served_config(app, project).segments["beta"].included == ["ann"]  # served at once
    newest = app.client.get("/v1/segments/beta/history/", headers=h).json()[0]
    assert newest["action"] == "restore" and newest["actor"].startswith("api_key:")
    assert newest["before"]["included"] == ["bob"] and newest["after"]["included"] == ["ann"]

    assert app.client.post("/v1/segments/beta/restore/", json={"entry_id": 10**9}, headers=h).status_code == 404
    bad = app.client.post("/v1/segments/beta/restore/", json={"version": 1}, headers=h)
    assert bad.status_code == 400 and "entry_id" in bad.json()["detail"]
    read_only = project.headers(project.ro_key)
    refused = app.client.post("/v1/segments/beta/restore/", json={"entry_id": created["id"]}, headers=read_only)
    assert refused.status_code == 403
    other = make_project(app.ctx)  # another project cannot restore (or see) this one's segment
    denied = app.client.post("/v1/segments/beta/restore/", json={"entry_id": created["id"]}, headers=other.headers())
    assert denied.status_code == 404
