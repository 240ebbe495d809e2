"""External variables and the ``read_external`` key scope, on a real server (SQLite and PostgreSQL): such a key
evaluates external variables through OFREP (checked with the ``openfeature-provider-ofrep`` client, at both
``/ofrep/v1`` and ``/v1/ofrep/v1``) and is refused everywhere else; internal variables are absent to it."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from rich.console import Console

import setpoint
from setpoint.config import VariablesConfig
from tests.server.conftest import BACKENDS
from tests.server.logfire_support import logfire_against
from tests.server.support import Project, ServerProcess

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

OFREP_PATHS = ["/ofrep/v1", "/v1/ofrep/v1"]


def body(name: str, value: Any, *, external: bool | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "description": None,
        "labels": {"prod": {"target_type": "version", "serialized_value": json.dumps(value)}},
        "rollout": {"labels": {"prod": 1.0}},
        "overrides": [],
    }
    if external is not None:
        data["external"] = external
    data.update(extra)
    return data


@pytest.fixture
def setup(server: ServerProcess, project: Project) -> str:
    """Three variables (two external) and a ``read_external`` key made with ``setpoint keys create``."""
    with server.client(project) as client:
        client.post("/v1/variables/", json=body("ui_theme", "dark", external=True)).raise_for_status()
        client.post("/v1/variables/", json=body("new_checkout", True, external=True)).raise_for_status()
        client.post("/v1/variables/", json=body("internal_prompt", "You are secret.")).raise_for_status()
    return server.create_key(project.name, "read_external")


@pytest.fixture(params=OFREP_PATHS)
def external_client(request: pytest.FixtureRequest, server: ServerProcess, setup: str) -> Iterator[OpenFeatureClient]:
    """The generic OFREP provider with the ``read_external`` key, at either OFREP base path."""
    base = server.url + str(request.param).removesuffix("/ofrep/v1")
    provider = OFREPProvider(base, headers_factory=lambda: {"Authorization": f"Bearer {setup}"})
    api.set_provider(provider, domain="external")
    try:
        yield api.get_client(domain="external")
    finally:
        api.clear_providers()
        provider.session.close()


def test_read_external_key_sees_only_external_variables_through_the_ofrep_client(
    external_client: OpenFeatureClient,
) -> None:
    theme = external_client.get_string_details("ui_theme", "light", EvaluationContext("u1"))
    assert (theme.value, theme.variant, theme.reason, theme.error_code) == ("dark", "prod", Reason.STATIC, None)
    assert external_client.get_boolean_value("new_checkout", False, EvaluationContext("u1")) is True
    hidden = external_client.get_string_details("internal_prompt", "default", EvaluationContext("u1"))
    assert (hidden.value, hidden.reason, hidden.error_code) == ("default", Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    missing = external_client.get_string_details("no_such_variable", "default", EvaluationContext("u1"))
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND


@pytest.mark.parametrize("prefix", OFREP_PATHS)
def test_internal_variables_answer_exactly_like_absent_ones(
    server: ServerProcess, project: Project, setup: str, prefix: str
) -> None:
    headers = {"Authorization": f"Bearer {setup}"}
    context = {"context": {"targetingKey": "u1"}}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        internal = client.post(f"{prefix}/evaluate/flags/internal_prompt", json=context)
        absent = client.post(f"{prefix}/evaluate/flags/nope", json=context)
        assert internal.status_code == absent.status_code == 404
        assert internal.json()["errorCode"] == absent.json()["errorCode"] == "FLAG_NOT_FOUND"
        assert internal.json()["errorDetails"] == absent.json()["errorDetails"].replace("'nope'", "'internal_prompt'")
        bulk = client.post(f"{prefix}/evaluate/flags", json=context)
        assert bulk.status_code == 200
        assert [f["key"] for f in bulk.json()["flags"]] == ["new_checkout", "ui_theme"]
        assert "You are secret." not in bulk.text
        assert client.post(f"{prefix}/evaluate/flags", json=context, headers={"If-None-Match": bulk.headers["etag"]}
                           ).status_code == 304  # fmt: skip
    # A read key (the full scope) sees every variable, at both paths.
    with server.client(project, project.ro_key) as client:
        bulk = client.post(f"{prefix}/evaluate/flags", json=context).json()
        assert [f["key"] for f in bulk["flags"]] == ["internal_prompt", "new_checkout", "ui_theme"]


def test_an_external_variable_composes_only_external_fragments_for_a_read_external_key(
    server: ServerProcess, project: Project, setup: str
) -> None:
    """A client-side key never receives an internal fragment's text through an ``@{reference}@``."""
    with server.client(project) as client:
        client.post("/v1/variables/", json=body("public_footer", "Thanks!", external=True)).raise_for_status()
        client.post(
            "/v1/variables/", json=body("leaky_banner", "Hi. @{internal_prompt}@", external=True)
        ).raise_for_status()
        client.post(
            "/v1/variables/", json=body("safe_banner", "Hi. @{public_footer}@", external=True)
        ).raise_for_status()
    context = {"context": {"targetingKey": "u1"}}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {setup}"}, timeout=10) as client:
        safe = client.post("/ofrep/v1/evaluate/flags/safe_banner", json=context)
        assert safe.status_code == 200 and safe.json()["value"] == "Hi. Thanks!"
        leaky = client.post("/ofrep/v1/evaluate/flags/leaky_banner", json=context)
        assert leaky.status_code == 400 and leaky.json()["errorCode"] == "GENERAL"
        assert "internal_prompt" not in leaky.text and "You are secret." not in leaky.text
        bulk = client.post("/ofrep/v1/evaluate/flags", json=context)
        assert "You are secret." not in bulk.text
    # A read key (backend) composes the internal fragment as usual.
    with server.client(project, project.ro_key) as client:
        full = client.post("/ofrep/v1/evaluate/flags/leaky_banner", json=context)
        assert full.status_code == 200 and full.json()["value"] == "Hi. You are secret."


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/variables/"),
        ("GET", "/v1/variables/ui_theme/"),
        ("GET", "/v1/variable-updates/"),
        ("GET", "/v1/variable-types/"),
        ("GET", "/v1/api-keys/"),
        ("GET", "/v1/segments/"),
        ("POST", "/v1/variables/"),
        ("POST", "/v1/variables/bulk/"),
        ("POST", "/v1/resolve/"),
    ],
)
def test_every_other_endpoint_refuses_the_scope_naming_the_one_needed(
    server: ServerProcess, setup: str, method: str, path: str
) -> None:
    response = httpx.request(
        method, server.url + path, headers={"Authorization": f"Bearer {setup}"}, json={} if method == "POST" else None
    )
    assert response.status_code == 403, response.text
    text = response.text
    assert "read_external" in text and ("'read'" in text or "'write'" in text)


def test_external_flag_in_api_wire_and_kept_by_a_replace_without_it(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        created = client.post("/v1/variables/", json=body("flag", 1, external=True))
        assert created.status_code == 201 and created.json()["external"] is True
        assert client.get("/v1/variables/").json()["variables"]["flag"]["external"] is True
        # The Logfire SDK's PUT has no `external` field: the flag must survive it.
        replaced = client.put("/v1/variables/flag/", json=body("flag", 2))
        assert replaced.status_code == 200 and replaced.json()["external"] is True
        off = client.patch("/v1/variables/flag/", json={"external": False})
        assert off.status_code == 200 and "external" not in off.json()
        assert "external" not in client.get("/v1/variables/").json()["variables"]["flag"]
        assert client.put("/v1/variables/flag/", json=body("flag", 2, external=True)).json()["external"] is True
        history = client.get("/v1/variables/flag/history/").json()
        assert any((e.get("after") or {}).get("external") for e in history["changes"])
        bad = client.patch("/v1/variables/flag/", json={"external": "maybe"})
        assert bad.status_code == 422 and "external" in bad.text


def test_keys_with_the_scope_from_the_api_and_the_cli(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        made = client.post("/v1/api-keys/", json={"name": "web app", "scopes": ["read_external"]})
        assert made.status_code == 201 and made.json()["scopes"] == ["read_external"]
        bad = client.post("/v1/api-keys/", json={"scopes": ["read_everything"]})
        assert bad.status_code == 422 and "read_external" in bad.text
    with server.client(project, project.ro_key) as client:  # creating keys needs write
        assert client.post("/v1/api-keys/", json={"scopes": ["read_external"]}).status_code == 403  # needs write
    listed = server.keys_command("list", "--project", project.name)
    assert "read_external" in listed
    key = made.json()["key"]
    answer = httpx.post(f"{server.url}/v1/ofrep/v1/evaluate/flags", headers={"Authorization": f"Bearer {key}"}, json={})
    assert answer.status_code == 200 and answer.json() == {"flags": []}


def test_push_config_sets_and_clears_the_flag(server: ServerProcess, project: Project, tmp_path: Path) -> None:
    path = tmp_path / "variables.yaml"
    path.write_text(
        "variables:\n"
        "  banner:\n"
        "    name: banner\n"
        "    external: true\n"
        "    labels: {prod: {version: 1, serialized_value: '\"Sale!\"'}}\n"
        "    rollout: {labels: {prod: 1.0}}\n"
    )
    quiet = Console(file=io.StringIO())
    assert setpoint.push_config(path, yes=True, url=server.url, api_key=project.rw_key, console=quiet)
    with server.client(project) as client:
        assert client.get("/v1/variables/").json()["variables"]["banner"]["external"] is True
        local = VariablesConfig.read(path)
        local.variables["banner"] = local.variables["banner"].model_copy(update={"external": False})
        assert setpoint.push_config(local, yes=True, url=server.url, api_key=project.rw_key, console=quiet)
        assert "external" not in client.get("/v1/variables/").json()["variables"]["banner"]
        assert not setpoint.push_config(local, yes=True, url=server.url, api_key=project.rw_key, console=quiet)


def test_the_logfire_sdk_reads_external_variables_and_its_pushes_keep_the_flag(
    server: ServerProcess, project: Project
) -> None:
    name = f"banner_{uuid.uuid4().hex[:8]}"  # the Logfire SDK registers names process-wide
    with server.client(project) as client:
        bulk = [body(name, "Sale!", external=True, json_schema={"type": "string"})]
        client.post("/v1/variables/bulk/", json=bulk).raise_for_status()
    with logfire_against(server.url, project.rw_key) as lf:
        banner = lf.var(name=name, type=str | None, default=None)
        with banner.get(targeting_key="u1") as resolved:
            assert (resolved.value, resolved.label) == ("Sale!", "prod")
        # The Logfire SDK's PUT bodies have no `external` field: a schema push and a config push keep it.
        assert lf.variables_push([banner], yes=True)
        pulled = lf.variables_pull_config().model_copy(deep=True)  # not the provider's cached objects
        pulled.variables[name].rollout.labels = {"prod": 0.5}
        assert lf.variables_push_config(pulled, mode="merge", yes=True)
    with server.client(project) as client:
        stored = client.get(f"/v1/variables/{name}/").json()
    assert stored["rollout"] == {"labels": {"prod": 0.5}} and stored["json_schema"] != {"type": "string"}
    assert stored["external"] is True


def test_a_read_external_key_cannot_feed_an_sdk(server: ServerProcess, project: Project, setup: str) -> None:
    """As Logfire documents: the pull-based SDK needs `read`; with `read_external` it serves code defaults."""
    with logfire_against(server.url, setup) as lf:
        theme = lf.var(name=f"ui_theme_{uuid.uuid4().hex[:8]}", type=str, default="light")
        with theme.get(targeting_key="u1") as resolved:
            assert resolved.value == "light" and resolved.label is None
