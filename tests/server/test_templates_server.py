"""Templates and composition on a real server (SQLite and PostgreSQL): write-time checks, `/v1/resolve/` and
OFREP expanding ``@{references}@`` like the SDK, and the real Logfire SDK and our SDK resolving one served
config identically."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import setpoint
from setpoint._sdk import state as sdk_state
from setpoint._sdk.providers import NoOpProvider
from setpoint._sdk.registry import clear_registry, registered_variables, restore_registry
from tests.server.conftest import BACKENDS
from tests.server.logfire_support import logfire_against
from tests.server.support import Project, ServerProcess

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

INPUTS_SCHEMA = {
    "type": "object",
    "properties": {"user_name": {"type": "string"}, "language": {"type": "string"}},
    "required": ["user_name", "language"],
}


class ChatInputs(BaseModel):
    user_name: str
    language: str


@pytest.fixture(autouse=True)
def isolated_sdk() -> Iterator[None]:
    saved_variables = registered_variables()
    saved_state = sdk_state.replace_state(sdk_state.SdkState(NoOpProvider()))
    clear_registry()
    try:
        yield
    finally:
        setpoint.shutdown(5)
        sdk_state.replace_state(saved_state)
        restore_registry(saved_variables)


@pytest.fixture
def api(server: ServerProcess, project: Project) -> Iterator[httpx.Client]:
    with server.client(project) as client:
        yield client


def _n(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def _create(api: httpx.Client, name: str, value: Any = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"name": name, **extra}
    if value is not None:
        body["labels"] = {"prod": {"target_type": "version", "serialized_value": json.dumps(value)}}
        body["rollout"] = {"labels": {"prod": 1.0}}
    return api.post("/v1/variables/", json=body)


def _version(api: httpx.Client, name: str, value: Any, label: str | None = "prod") -> httpx.Response:
    return api.post(f"/v1/variables/{name}/versions/", json={"serialized_value": json.dumps(value), "label": label})


def test_a_template_version_with_an_undeclared_field_is_refused_naming_it(api: httpx.Client) -> None:
    frag, prompt = _n("frag"), _n("prompt")
    _create(api, frag, "Be concise.").raise_for_status()
    created = _create(
        api, prompt, "Hi {{user_name}} in {{language}}. @{" + frag + "}@", template_inputs_schema=INPUTS_SCHEMA
    )
    assert created.status_code == 201, created.text
    assert api.get(f"/v1/variables/{prompt}/").json()["template_inputs_schema"] == INPUTS_SCHEMA

    refused = _version(api, prompt, "Hi {{user_name}} {{mood}}")
    assert refused.status_code == 422
    assert "{{mood}}" in refused.json()["detail"] and prompt in refused.json()["detail"]

    # through a reference: the fragment itself has no schema, but the template that composes it does
    through = _version(api, frag, "Answer in {{tone}}.")
    assert through.status_code == 422, through.text
    detail = through.json()["detail"]
    assert "{{tone}}" in detail and repr(prompt) in detail and repr(frag) in detail
    # nothing was written
    assert [v["version"] for v in api.get(f"/v1/variables/{frag}/versions/").json()] == [1]

    # narrowing the inputs schema under existing values is refused too; an invalid JSON schema as well
    stored = api.get(f"/v1/variables/{prompt}/").json()
    body = {k: v for k, v in stored.items() if k not in ("latest_version", "type_name")}
    body["labels"] = {"prod": {"target_type": "version", "version": 1}}
    narrowed = api.put(
        f"/v1/variables/{prompt}/",
        json={**body, "template_inputs_schema": {"type": "object", "properties": {"user_name": {"type": "string"}}}},
    )
    assert narrowed.status_code == 422 and "{{language}}" in narrowed.json()["detail"]
    invalid = api.put(f"/v1/variables/{prompt}/", json={**body, "template_inputs_schema": {"type": 12}})
    assert invalid.status_code == 422 and "template_inputs_schema" in invalid.json()["detail"]


def test_references_to_missing_variables_cycles_deep_chains_and_bad_syntax_are_refused(api: httpx.Client) -> None:
    a, b = _n("a"), _n("b")
    missing = _create(api, a, "x @{nowhere_" + a + "}@")
    assert missing.status_code == 422 and "nowhere_" in missing.json()["detail"]
    _create(api, a, "A").raise_for_status()
    _create(api, b, "B @{" + a + "}@").raise_for_status()
    cycle = _version(api, a, "A @{" + b + "}@")
    assert cycle.status_code == 422
    assert f"{a} -> {b} -> {a}" in cycle.json()["detail"]

    syntax = _version(api, a, "@{#if " + b + "}@ unclosed")
    assert syntax.status_code == 422 and "not a valid composition template" in syntax.json()["detail"]

    # c1 -> ... -> c22: values nested 20 levels deep (c22 is plain), the most the SDKs expand
    chain = [_n(f"c{i}") for i in range(23)]
    _create(api, chain[-1], "end").raise_for_status()
    for i in range(21, 0, -1):
        _create(api, chain[i], "@{" + chain[i + 1] + "}@").raise_for_status()
    too_deep = _create(api, chain[0], "@{" + chain[1] + "}@")  # 21 levels
    assert too_deep.status_code == 422 and "21 levels deep" in too_deep.json()["detail"]
    resolved = api.post("/v1/resolve/", json={"variables": [chain[1]]}).json()["results"][0]
    assert (resolved["value"], resolved["error"]) == ("end", None)


def test_deleting_or_renaming_a_referenced_variable_is_refused_naming_the_users(api: httpx.Client) -> None:
    frag, user1, user2 = _n("frag"), _n("user1"), _n("user2")
    _create(api, frag, "F").raise_for_status()
    _create(api, user1, "1 @{" + frag + "}@").raise_for_status()
    _create(api, user2, {"text": "@{#if " + frag + "}@yes@{/if}@"}).raise_for_status()
    deleted = api.delete(f"/v1/variables/{frag}/")
    assert deleted.status_code == 409
    assert user1 in deleted.json()["detail"] and user2 in deleted.json()["detail"]
    renamed = api.post(f"/v1/variables/{frag}/rename/", json={"new_name": _n("other"), "keep_alias": False})
    assert renamed.status_code == 409 and user1 in renamed.json()["detail"]
    # with the old name kept as an alias the references keep resolving, so that rename is allowed
    new_name = _n("renamed")
    api.post(f"/v1/variables/{frag}/rename/", json={"new_name": new_name}).raise_for_status()
    resolved = api.post("/v1/resolve/", json={"variables": [user1]}).json()["results"][0]
    assert resolved["value"] == "1 F"
    # once nothing references it, it can go
    _version(api, user1, "1").raise_for_status()
    _version(api, user2, {"text": "no"}).raise_for_status()
    assert api.delete(f"/v1/variables/{new_name}/").status_code == 204


def test_server_side_resolve_and_ofrep_compose_with_the_fragments_own_rollout(
    server: ServerProcess, project: Project, api: httpx.Client
) -> None:
    frag, prompt = _n("tone"), _n("chat")
    labels = {
        "a": {"target_type": "version", "serialized_value": json.dumps("Tone A.")},
        "b": {"target_type": "version", "serialized_value": json.dumps("Tone B.")},
    }
    api.post("/v1/variables/", json={"name": frag, "labels": labels, "rollout": {"labels": {"a": 0.5, "b": 0.5}}})
    value = "Hi {{user_name}}. @{" + frag + "}@"
    _create(api, prompt, value, template_inputs_schema=INPUTS_SCHEMA).raise_for_status()
    seen: set[str] = set()
    for key in (f"user-{i}" for i in range(12)):
        results = api.post(
            "/v1/resolve/",
            json={"targeting_key": key, "variables": [prompt, frag], "inputs": {"user_name": "Ada", "language": "x"}},
        ).json()["results"]
        by_name = {r["name"]: r for r in results}
        tone = by_name[frag]["value"]
        assert by_name[prompt]["value"] == f"Hi Ada. {tone}"
        assert by_name[prompt]["composed_from"] == [
            {
                "name": frag,
                "version": by_name[frag]["version"],
                "label": by_name[frag]["label"],
                "reason": "resolved",
                "error": None,
            }
        ]
        ofrep = httpx.post(
            f"{server.url}/ofrep/v1/evaluate/flags/{prompt}",
            json={"context": {"targetingKey": key}},
            headers=project.headers(),
        ).json()
        assert ofrep["value"] == f"Hi {{{{user_name}}}}. {tone}"  # OFREP has no template inputs: fields stay
        seen.add(tone)
    assert seen == {"Tone A.", "Tone B."}  # the fragment's own rollout applied per targeting key
    no_inputs = api.post("/v1/resolve/", json={"variables": [prompt], "targeting_key": "k"}).json()["results"][0]
    assert no_inputs["value"].startswith("Hi {{user_name}}. Tone ")


def test_our_sdk_and_the_logfire_sdk_resolve_one_served_config_identically(
    server: ServerProcess, project: Project, api: httpx.Client
) -> None:
    tone, persona, prompt, rules = _n("tone"), _n("persona"), _n("prompt"), _n("rules")
    labels = {
        "a": {"target_type": "version", "serialized_value": json.dumps("Be brief.")},
        "b": {"target_type": "version", "serialized_value": json.dumps("Be thorough, ünïcode ok.")},
    }
    # The two SDKs bucket percentages differently (by design), so the fragment's targeting is by attribute.
    overrides = [
        {
            "conditions": [{"kind": "value-equals", "attribute": "plan", "value": "pro"}],
            "rollout": {"labels": {"b": 1.0}},
        }
    ]
    api.post(
        "/v1/variables/",
        json={"name": tone, "labels": labels, "rollout": {"labels": {"a": 1.0}}, "overrides": overrides},
    ).raise_for_status()
    _create(api, persona, {"name": "Ada", "traits": ["kind", "exact"]}).raise_for_status()
    _create(api, rules, "Rule: @{" + tone + "}@").raise_for_status()
    template = (
        "You are @{" + persona + ".name}@ (@{#each " + persona + ".traits}@@{this}@;@{/each}@). @{" + rules + "}@ "
        "Help {{user_name}} in {{language}}.{{#if language}} !{{/if}}"
    )
    _create(api, prompt, template, template_inputs_schema=INPUTS_SCHEMA).raise_for_status()

    setpoint.configure(remote=setpoint.RemoteOptions(url=server.url, api_key=project.rw_key))
    ours_prompt = setpoint.template_var(prompt, type=str, default="fallback", inputs_type=ChatInputs)
    ours_rules = setpoint.var(rules, type=str, default="no rules")
    contexts = [("user-1", {"plan": "pro"}), ("user-2", {"plan": "free"}), ("user-3", {})]
    inputs = ChatInputs(user_name='Bo "B" <b>', language="French")
    ours = [ours_prompt.get(inputs, targeting_key=k, attributes=a) for k, a in contexts]
    ours_plain = [ours_rules.get(targeting_key=k, attributes=a) for k, a in contexts]
    setpoint.shutdown(5)

    with logfire_against(server.url, project.rw_key) as lf:
        their_prompt = lf.template_var(prompt, type=str, default="fallback", inputs_type=ChatInputs)
        their_rules = lf.var(rules, type=str, default="no rules")
        theirs = [their_prompt.get(inputs, targeting_key=k, attributes=a) for k, a in contexts]
        theirs_plain = [their_rules.get(targeting_key=k, attributes=a) for k, a in contexts]

    def shape(refs: Any) -> list[Any]:
        return [(r.name, r.value, r.label, r.version, r.reason, r.error, shape(r.composed_from)) for r in refs]

    for mine, their in zip([*ours, *ours_plain], [*theirs, *theirs_plain], strict=True):
        assert (mine.value, mine.label, mine.version, mine.reason) == (
            their.value,
            their.label,
            their.version,
            their.reason,
        )
        assert shape(mine.composed_from) == shape(their.composed_from)
    assert {r.value for r in ours} == {
        'You are Ada (kind;exact;). Rule: Be brief. Help Bo "B" <b> in French. !',
        'You are Ada (kind;exact;). Rule: Be thorough, ünïcode ok. Help Bo "B" <b> in French. !',
    }


def test_a_logfire_sdk_template_var_is_pushed_and_resolved_from_our_server(
    server: ServerProcess, project: Project, api: httpx.Client
) -> None:
    name = _n("lf_prompt")
    with logfire_against(server.url, project.rw_key) as lf:
        prompt = lf.template_var(name, type=str, default="Hello {{user_name}} ({{language}})", inputs_type=ChatInputs)
        assert lf.variables_push([prompt], yes=True)
        stored = api.get(f"/v1/variables/{name}/").json()
        assert stored["template_inputs_schema"] == ChatInputs.model_json_schema()
        assert _version(api, name, "Bonjour {{user_name}}, {{language}}!").status_code == 201
        refused = _version(api, name, "Bonjour {{nickname}}")
        assert refused.status_code == 422 and "{{nickname}}" in refused.json()["detail"]
        api.put(
            f"/v1/variables/{name}/",
            json={
                "name": name,
                "json_schema": stored["json_schema"],
                "template_inputs_schema": stored["template_inputs_schema"],
                "labels": {"prod": {"target_type": "version", "version": 1}},
                "rollout": {"labels": {"prod": 1.0}},
            },
        ).raise_for_status()
        lf.config.get_variable_provider().refresh(force=True)
        with prompt.get(ChatInputs(user_name="Ada", language="fr")) as resolved:
            assert resolved.value == "Bonjour Ada, fr!"
            assert (resolved.label, resolved.version) == ("prod", 1)


def test_push_sends_the_inputs_schema_and_runs_the_write_checks_before_writing(
    server: ServerProcess, project: Project, api: httpx.Client
) -> None:
    frag, prompt, broken, dangling = _n("frag"), _n("prompt"), _n("broken"), _n("dangling")
    setpoint.configure(remote=setpoint.RemoteOptions(url=server.url, api_key=project.rw_key))
    setpoint.var(frag, type=str, default="Be kind.")
    template = setpoint.template_var(
        prompt, type=str, default="Hi {{user_name}} ({{language}}) @{" + frag + "}@", inputs_type=ChatInputs
    )
    assert setpoint.push(yes=True)
    assert api.get(f"/v1/variables/{prompt}/").json()["template_inputs_schema"] == ChatInputs.model_json_schema()
    assert template.get(ChatInputs(user_name="Al", language="en")).value == "Hi Al (en) Be kind."

    # The server accepts a fragment value with {{nickname}}: no stored value of the template composes it yet, only
    # its code default does. Pushing the template checks its code default with the server's values: refused.
    api.put(
        f"/v1/variables/{frag}/labels/prod/",
        json={"target_type": "version", "serialized_value": json.dumps("Say {{nickname}}.")},
    ).raise_for_status()
    revision = api.get(f"/v1/variables/{prompt}/").headers["ETag"]
    template_changed = setpoint.template_var(
        _n("other"), type=str, default="@{" + frag + "}@ {{user_name}}", inputs_type=ChatInputs
    )
    with pytest.raises(setpoint.VariableValueError, match=r"\{\{nickname\}\}"):
        setpoint.push([template_changed], yes=True)
    report = setpoint.validate([template_changed])
    assert report.has_errors
    assert {e.variable_name for e in report.errors} == {template_changed.name}
    assert "{{nickname}}" in report.errors[0].error
    assert api.get(f"/v1/variables/{template_changed.name}/").status_code == 404
    assert api.get(f"/v1/variables/{prompt}/").headers["ETag"] == revision

    bad = setpoint.template_var(broken, type=str, default="Hi {{nickname}}", inputs_type=ChatInputs)
    setpoint.var(dangling, type=str, default="@{no_such_variable_" + dangling + "}@")
    with pytest.raises(setpoint.VariableValueError) as refused:
        setpoint.push([bad], yes=True)
    assert "{{nickname}}" in str(refused.value)
    with pytest.raises(setpoint.VariableValueError, match="neither on the server nor in code"):
        setpoint.push(yes=True)
    assert api.get(f"/v1/variables/{broken}/").status_code == 404
    assert api.get(f"/v1/variables/{dangling}/").status_code == 404


def test_a_reference_to_a_variable_serving_its_code_default_is_reported_by_resolve_and_ofrep(
    server: ServerProcess, project: Project, api: httpx.Client
) -> None:
    frag, prompt = _n("frag"), _n("prompt")
    _create(api, frag).raise_for_status()  # no value: serves the code default, which the server does not know
    _create(api, prompt, "Hello @{" + frag + "}@").raise_for_status()
    [result] = api.post("/v1/resolve/", json={"variables": [prompt], "targeting_key": "k"}).json()["results"]
    assert result["reason"] == "other_error" and result["value"] is None
    assert frag in result["error"] and "code default" in result["explanation"]
    assert result["composed_from"][0]["error"] == f"referenced variable {frag!r} could not be resolved"
    ofrep = httpx.post(
        f"{server.url}/ofrep/v1/evaluate/flags/{prompt}",
        json={"context": {"targetingKey": "k"}},
        headers=project.headers(),
    )
    assert ofrep.status_code == 400
    assert ofrep.json()["errorCode"] == "GENERAL" and frag in ofrep.json()["errorDetails"]
    # the SDK, which knows the fragment's code default, composes with it
    setpoint.configure(remote=setpoint.RemoteOptions(url=server.url, api_key=project.rw_key))
    setpoint.var(frag, type=str, default="world")
    assert setpoint.var(prompt, type=str, default="fallback").get().value == "Hello world"


def test_push_config_writes_referenced_variables_first_and_deletes_them_last(
    server: ServerProcess, project: Project, api: httpx.Client
) -> None:
    from setpoint.config import LabeledValue, Rollout, VariableConfig, VariablesConfig

    def config(name: str, value: str) -> VariableConfig:
        labels = {"prod": LabeledValue(version=1, serialized_value=json.dumps(value))}
        return VariableConfig(name=name, labels=labels, rollout=Rollout(labels={"prod": 1.0}))

    suffix = uuid.uuid4().hex[:6]
    a, m, z = f"a_{suffix}", f"m_{suffix}", f"z_{suffix}"  # a -> m -> z, in name order the wrong way round
    variables = {a: config(a, "A @{" + m + "}@"), m: config(m, "M @{" + z + "}@"), z: config(z, "Z")}
    options = {"url": server.url, "api_key": project.rw_key, "yes": True}
    assert setpoint.push_config(VariablesConfig(variables=variables), **options)  # type: ignore[arg-type]
    [result] = api.post("/v1/resolve/", json={"variables": [a]}).json()["results"]
    assert result["value"] == "A M Z"
    other = f"other_{suffix}"
    assert setpoint.push_config(
        VariablesConfig(variables={other: config(other, "x")}),
        mode="replace",
        **options,  # type: ignore[arg-type]
    )
    assert sorted(api.get("/v1/variables/").json()["variables"]) == [other]
