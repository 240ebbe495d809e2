"""Templates and composition in the web UI, in headless Chromium: the create form's template toggle, the inputs
schema, the editor's highlighting and reference links, the rendered preview, write-time refusal, "used by" and
the simulator rendering a template with typed-in inputs."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from setpoint._server.services import keys
from tests.manage.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

INPUTS_SCHEMA = {"type": "object", "properties": {"user_name": {"type": "string"}}, "required": ["user_name"]}


def test_template_variable_journey(page: Page, live: LiveServer) -> None:
    suffix = uuid.uuid4().hex[:6]
    tone, prompt = f"tone_{suffix}", f"prompt_{suffix}"
    token = keys.create_key(live.ctx, "default", frozenset({"read", "write"}), "tests").token
    with httpx.Client(base_url=live.url, headers={"Authorization": f"bearer {token}"}) as api:
        labels = {"prod": {"target_type": "version", "serialized_value": json.dumps("Be nice.")}}
        api.post("/v1/variables/", json={"name": tone, "labels": labels, "rollout": {"labels": {"prod": 1}}})

    # Create form: the template toggle reveals the inputs schema.
    page.get_by_role("link", name="New variable").click()
    page.get_by_label("Name").fill(prompt)
    page.get_by_label("Text", exact=True).check()
    inputs_box = page.get_by_label("Inputs schema")
    assert not inputs_box.is_visible()
    page.get_by_label("A template").check()
    inputs_box.fill(json.dumps(INPUTS_SCHEMA))
    page.get_by_role("button", name="Create variable").click()
    page.wait_for_url(f"**/variables/{prompt}?*")

    # The values tab shows the inputs schema.
    assert json.loads(page.locator("[data-inputs-schema]").inner_text()) == INPUTS_SCHEMA

    # The editor highlights fields and references, and links each reference to its variable.
    page.locator("#value").fill("Hi {{user_name}}! @{" + tone + "}@")
    view = page.locator("[data-template-view]")
    assert view.locator("mark.tpl-field").inner_text() == "{{user_name}}"
    link = view.locator("a.tpl-ref")
    assert link.inner_text() == "@{" + tone + "}@"
    assert link.get_attribute("href", timeout=2000) == f"/p/default/variables/{tone}"

    # Preview with sample inputs: composed with what is served now, then rendered.
    page.locator("#sample-inputs").fill(json.dumps({"user_name": "Ada"}))
    page.get_by_role("button", name="Preview rendered value").click()
    output = page.locator("[data-preview-output]")
    output.filter(has_text="Hi Ada!").wait_for()
    assert output.inner_text() == "Hi Ada! Be nice."

    # An undeclared field is refused on save, naming it.
    page.locator("#value").fill("Hi {{nickname}}")
    page.get_by_role("button", name="Save as new version").click()
    error = page.locator("#form-error")
    assert "{{nickname}}" in error.inner_text()

    page.locator("#value").fill("Hi {{user_name}}! @{" + tone + "}@")
    page.get_by_label("or a new label").fill("prod")
    page.get_by_role("button", name="Save as new version").click()
    page.locator(".alert-ok").wait_for()

    # The fragment lists who uses it; it cannot be deleted meanwhile.
    page.goto(f"{live.url}/p/default/variables/{tone}")
    used_by = page.locator("[data-used-by]")
    assert used_by.get_by_role("link", name=prompt).get_attribute("href") == f"/p/default/variables/{prompt}"

    # The simulator renders the template with typed-in inputs.
    with httpx.Client(base_url=live.url, headers={"Authorization": f"bearer {token}"}) as api:
        body = api.get(f"/v1/variables/{prompt}/").json()
        body["rollout"] = {"labels": {"prod": 1}}
        body["labels"] = {"prod": {"target_type": "version", "version": 1}}
        for extra in ("latest_version", "type_name"):
            body.pop(extra, None)
        api.put(f"/v1/variables/{prompt}/", json=body).raise_for_status()
    page.get_by_role("link", name="Simulator").click()
    page.get_by_label("Targeting key").fill("user-1")
    page.get_by_label("Template inputs").fill(json.dumps({"user_name": "Grace"}))
    page.get_by_role("button", name="Simulate").click()
    row = page.locator(f"tr[data-variable='{prompt}']")
    assert json.loads(row.locator("[data-col=value] .value-preview").inner_text()) == "Hi Grace! Be nice."
    assert tone in row.locator("[data-col=composed]").inner_text()
