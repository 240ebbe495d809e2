"""What a new user meets, in headless Chromium: long names, messages in the UI's words, confirmations before
destructive clicks, the prefilled editor, segment search, the rollout legend, value previews, the favicon."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from setpoint._server.services import editing, keys, lifecycle
from setpoint._server.services.segments import service as segments
from tests.manage.live import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

ACTOR = "user:admin"
SCHEMA = {
    "type": "object",
    "properties": {"instructions": {"type": "string", "minLength": 3}, "temperature": {"type": "number"}},
    "required": ["instructions"],
}


def _project_id(live: LiveServer) -> int:
    with live.ctx.storage.read() as tx:
        project = tx.get_project("default")
    assert project is not None
    return project.id


def _json_variable(live: LiveServer, name: str, *values: dict[str, Any], label: str = "production") -> None:
    pid = _project_id(live)
    lifecycle.create_variable(live.ctx, pid, name, ACTOR, json_schema=SCHEMA, description="Agent settings")
    for value in values:
        editing.create_version(live.ctx, pid, name, json.dumps(value), ACTOR, label=label)


def _no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1360, f"{page.url} is {width} px wide"


def _visible_in_viewport(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None and box["width"] > 20, selector
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1360, (selector, box)


def test_long_names_wrap_or_truncate_with_the_full_name_on_hover(page: Page, live: LiveServer) -> None:
    name = ("a_very_long_variable_name_" + uuid.uuid4().hex)[:32] + "x" * 96
    assert len(name) == 128
    _json_variable(live, name, {"instructions": "Be concise and friendly."})

    page.goto(f"{live.url}/p/default/variables?q={name[:32]}")
    link = page.locator(f'a.name[title="{name}"]')
    assert link.inner_text() == name  # whole in the DOM, cut with an ellipsis on screen, whole on hover
    assert link.evaluate("e => e.scrollWidth > e.clientWidth")
    _no_horizontal_scroll(page)
    _visible_in_viewport(page, "th:has-text('Last seen')")

    for tab in ("", "/targeting", "/history", "/settings", "/usage"):
        page.goto(f"{live.url}/p/default/variables/{name}{tab}")
        _no_horizontal_scroll(page)
        assert page.locator("h1").inner_text() == name  # the heading wraps

    segment_key = name.replace("_", "-")
    segments.create_segment(live.ctx, _project_id(live), {"key": segment_key, "name": name}, ACTOR)
    for path in ("/segments", f"/segments/{segment_key}", f"/segments/{segment_key}/history"):
        page.goto(f"{live.url}/p/default{path}")
        _no_horizontal_scroll(page)

    page.goto(f"{live.url}/p/default/simulator")
    page.get_by_label("Targeting key").fill("user_1")
    page.get_by_role("button", name="Simulate").click()
    row = f'tr[data-variable="{name}"]'
    for column in ("label", "value", "reason"):
        _visible_in_viewport(page, f'{row} [data-col="{column}"]')
    assert page.locator(f"{row} a.name").get_attribute("title") == name
    _no_horizontal_scroll(page)


def test_value_previews_break_between_words(page: Page, live: LiveServer) -> None:
    name = f"preview_{uuid.uuid4().hex[:6]}"
    text = "Answer politely and briefly, then offer further assistance with anything customers need today"
    _json_variable(live, name, {"instructions": text, "temperature": 0.25})
    page.set_viewport_size({"width": 900, "height": 900})  # narrow: the preview wraps
    page.goto(f"{live.url}/p/default/variables/{name}")
    preview = page.locator('tr[data-version="1"] .value-preview')
    split_words = preview.evaluate(
        """element => {
            const node = element.firstChild, text = node.textContent, split = [];
            const re = /[A-Za-z]+/g;
            let m;
            while ((m = re.exec(text)) !== null) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
                if (tops.size > 1) split.push(m[0]);
            }
            return {split, lines: new Set(Array.from(element.getClientRects()).map(r => Math.round(r.top))).size};
        }"""
    )
    assert split_words["lines"] > 1, "the preview should wrap at this width"
    assert split_words["split"] == []


def test_confirmation_before_deleting_a_label_and_revoking_a_key(page: Page, live: LiveServer) -> None:
    name = f"confirm_{uuid.uuid4().hex[:6]}"
    _json_variable(live, name, {"instructions": "one"}, label="canary")
    page.goto(f"{live.url}/p/default/variables/{name}")
    messages: list[str] = []

    def dismiss(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Delete label canary").click()
    page.wait_for_timeout(300)
    assert messages and "Delete the label “canary”?" in messages[0]
    assert page.locator('tr[data-label="canary"]').count() == 1  # dismissed: nothing sent
    with live.ctx.storage.read() as tx:
        assert tx.get_variable(_project_id(live), name) is not None
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete label canary").click()
    assert "Label 'canary' deleted" in page.locator(".alert-ok").inner_text()
    assert page.locator('tr[data-label="canary"]').count() == 0

    key_name = f"revoke me {uuid.uuid4().hex[:4]}"
    created = keys.create_key(live.ctx, "default", frozenset({"read"}), ACTOR, name=key_name)
    page.goto(f"{live.url}/p/default/keys")
    messages.clear()
    page.once("dialog", dismiss)
    page.get_by_role("button", name=f"Revoke key {key_name}").click()
    page.wait_for_timeout(300)
    assert messages and f"Revoke the key “{key_name}”?" in messages[0]
    headers = {"Authorization": f"bearer {created.token}"}
    assert httpx.get(f"{live.url}/v1/variables/", headers=headers).status_code == 200  # still works
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke key {key_name}").click()
    assert "Revoked key" in page.locator(".alert-ok").inner_text()
    assert httpx.get(f"{live.url}/v1/variables/", headers=headers).status_code == 401


def test_new_version_editor_is_prefilled(page: Page, live: LiveServer) -> None:
    pid = _project_id(live)
    empty = f"empty_{uuid.uuid4().hex[:6]}"
    lifecycle.create_variable(live.ctx, pid, empty, ACTOR, json_schema=SCHEMA)
    page.goto(f"{live.url}/p/default/variables/{empty}")
    # No version, no example: the schema's shape to fill in.
    assert json.loads(page.get_by_label("Value").input_value()) == {"instructions": "", "temperature": 0}

    used = f"used_{uuid.uuid4().hex[:6]}"
    _json_variable(live, used, {"instructions": "first"}, {"instructions": "current", "temperature": 0.3})
    page.goto(f"{live.url}/p/default/variables/{used}")
    assert json.loads(page.get_by_label("Value").input_value()) == {"instructions": "current", "temperature": 0.3}
    page.locator("#validation.ok").wait_for()  # and it is checked against the schema at once


def test_messages_in_the_ui_words(page: Page, live: LiveServer) -> None:
    name = f"words_{uuid.uuid4().hex[:6]}"
    _json_variable(live, name, {"instructions": "first"})
    page.goto(f"{live.url}/p/default/variables/{name}")

    page.get_by_label("Value").fill('{"instructions": "x",}')
    page.locator("#validation.bad").wait_for()  # as you type, in the same words
    live_check = page.locator("#validation").inner_text()
    assert "value is not valid JSON" in live_check and "serialized_value" not in live_check, live_check
    page.get_by_role("button", name="Save as new version").click()
    error = page.locator("#form-error").inner_text()
    assert "The value is not valid JSON" in error or "the value is not valid JSON" in error, error
    assert "serialized_value" not in error and "JSON-encoded" not in error

    # Schema errors: the headline says what is wrong, the list says each problem once.
    page.get_by_label("Value").fill('{"instructions": "x", "temperature": "hot"}')
    page.get_by_role("button", name="Save as new version").click()
    error = page.locator("#form-error").inner_text()
    assert "The value does not match the variable's schema (2 problems)" in error, error
    assert error.count("'x' is too short") == 1 and error.count("'hot' is not of type 'number'") == 1

    # Segment rules are numbered as the page shows them (rule #2, clause #1), not as the API's rules[1].
    key = f"seg-{uuid.uuid4().hex[:6]}"
    rule = {"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}]}
    segments.create_segment(live.ctx, _project_id(live), {"key": key, "name": "Pro", "rules": [rule]}, ACTOR)
    page.goto(f"{live.url}/p/default/segments/{key}")
    page.get_by_role("button", name="+ Add rule").click()
    second = page.locator("[data-seg-rules] [data-seg-rule]").nth(1)
    second.get_by_label("Attribute").fill("email")
    second.get_by_label("Operator").select_option("matches")
    second.get_by_label("Values").fill("([unclosed")
    page.get_by_role("button", name="Save segment").click()
    error = page.locator("#form-error").inner_text()
    assert "rule #2, clause #1" in error and "rules[" not in error and "clauses[" not in error, error

    # A variable that cannot be created says so in a sentence.
    page.goto(f"{live.url}/p/default/variables/new")
    page.get_by_label("Name").fill(f"bad_schema_{uuid.uuid4().hex[:6]}")
    page.get_by_label("JSON", exact=True).check()
    page.get_by_label("JSON schema").fill('{"type": "no-such-type"}')
    page.get_by_role("button", name="Create variable").click()
    alert = page.locator(".alert-error").inner_text()
    assert alert.startswith("Not created. The JSON schema"), alert


def test_api_key_form_keeps_its_input_after_an_error(page: Page, live: LiveServer) -> None:
    page.goto(f"{live.url}/p/default/keys")
    page.get_by_label("Name").fill("checkout service")
    page.get_by_label("read", exact=False).first.uncheck()
    page.get_by_role("button", name="Create key").click()
    assert "Choose at least one scope" in page.locator(".alert-error").inner_text()
    assert "missing scopes" not in page.locator(".alert-error").inner_text()
    assert page.get_by_label("Name").input_value() == "checkout service"
    assert not page.locator("input[name=scope_read]").is_checked()  # as the user left it (the default checks it)


def test_versions_table_names_the_key_once(page: Page, live: LiveServer) -> None:
    name = f"bykey_{uuid.uuid4().hex[:6]}"
    lifecycle.create_variable(live.ctx, _project_id(live), name, ACTOR, json_schema=SCHEMA)
    token = keys.create_key(live.ctx, "default", frozenset({"read", "write"}), ACTOR).token  # unnamed key
    response = httpx.post(
        f"{live.url}/v1/variables/{name}/versions/",
        json={"value": {"instructions": "from the API"}},
        headers={"Authorization": f"bearer {token}"},
    )
    assert response.status_code == 201, response.text
    page.goto(f"{live.url}/p/default/variables/{name}")
    by = page.locator('tr[data-version="1"] td').nth(3).inner_text()
    assert f"API key {token[:6]}" in by and "key key" not in by, by


def test_segments_list_search(page: Page, live: LiveServer) -> None:
    pid = _project_id(live)
    tag = uuid.uuid4().hex[:6]
    segments.create_segment(live.ctx, pid, {"key": f"beta-{tag}", "name": "Beta testers", "tags": [tag]}, ACTOR)
    segments.create_segment(live.ctx, pid, {"key": f"staff-{tag}", "name": "Staff", "description": "Employees"}, ACTOR)
    page.goto(f"{live.url}/p/default/segments")
    page.get_by_label("Search").fill("beta tester")
    page.get_by_role("button", name="Search").click()
    assert page.locator(f'tr[data-segment="beta-{tag}"]').count() == 1
    assert page.locator(f'tr[data-segment="staff-{tag}"]').count() == 0
    page.get_by_label("Search").fill("EMPLOYEES")  # description, any case
    page.get_by_role("button", name="Search").click()
    assert page.locator("tr[data-segment]").count() == 1 and page.locator(f'tr[data-segment="staff-{tag}"]').count()
    page.get_by_label("Search").fill("nothing-like-this")
    page.get_by_role("button", name="Search").click()
    assert "No segment matches “nothing-like-this”" in page.locator(".empty").inner_text()
    page.get_by_role("link", name="Clear").click()
    assert page.locator(f'tr[data-segment="beta-{tag}"]').count() == 1


def test_rollout_bar_has_a_legend_in_its_colours(page: Page, live: LiveServer) -> None:
    name = f"legend_{uuid.uuid4().hex[:6]}"
    _json_variable(live, name, {"instructions": "one"}, label="control")
    editing.create_version(live.ctx, _project_id(live), name, json.dumps({"instructions": "two"}), ACTOR, label="test")
    page.goto(f"{live.url}/p/default/variables/{name}/targeting")
    section = page.locator("section", has=page.get_by_role("heading", name="Default rollout"))
    section.get_by_label("control").fill("30")
    section.get_by_label("test").fill("50")
    legend = section.locator("[data-legend]")
    assert legend.inner_text().split() == ["control", "test", "code", "default", "(the", "rest)"]
    legend_colours = legend.locator("[data-legend-label] i").evaluate_all(
        "items => items.map(i => getComputedStyle(i).backgroundColor)"
    )
    bar_colours = section.locator("[data-bar] span").evaluate_all(
        "spans => spans.map(s => getComputedStyle(s).backgroundColor)"
    )
    assert bar_colours == legend_colours and len(set(bar_colours)) == 2


def test_favicon_is_served(page: Page, live: LiveServer) -> None:
    response = httpx.get(f"{live.url}/favicon.ico")  # no session: browsers ask before logging in
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith("<svg")
    assert page.locator('link[rel="icon"]').get_attribute("href") == "/favicon.ico"
    icon = page.evaluate(
        """async () => {
            const img = new Image();
            img.src = "/favicon.ico";
            await img.decode();
            return [img.naturalWidth, img.naturalHeight];
        }"""
    )
    assert icon[0] > 0 and icon[1] > 0  # the browser can draw it


def test_history_shows_each_change_and_restores_a_segment(page: Page, live: LiveServer) -> None:
    pid = _project_id(live)
    name = f"hist_{uuid.uuid4().hex[:6]}"
    _json_variable(live, name, {"instructions": "one"}, label="control")
    editing.set_targeting(live.ctx, pid, name, {"labels": {"control": 0.25}}, [], ACTOR)
    page.goto(f"{live.url}/p/default/variables/{name}/history")
    newest = page.locator(".timeline li").first
    assert newest.locator(".change-diff .diff").is_hidden()  # folded until asked for
    newest.get_by_text("Show the change").click()
    diff = newest.locator(".change-diff .diff")
    added = diff.locator(".add").all_inner_texts()
    assert any('"control": 0.25' in line for line in added), diff.inner_text()

    key = f"hist-{uuid.uuid4().hex[:6]}"
    segments.create_segment(live.ctx, pid, {"key": key, "name": "First", "included": ["ann"]}, ACTOR)
    segments.replace_segment(live.ctx, pid, key, {"key": key, "name": "Second", "included": ["bob"]}, ACTOR)
    page.goto(f"{live.url}/p/default/segments/{key}/history")
    entries = page.locator(".timeline li")
    assert entries.count() == 2
    entries.first.get_by_text("Show the change").click()
    diff_text = entries.first.locator(".diff").inner_text()
    assert '-  "name": "First"' in diff_text and '+  "name": "Second"' in diff_text
    assert '-    "ann"' in diff_text and '+    "bob"' in diff_text
    assert entries.first.get_by_role("button").count() == 0  # the newest entry is the current state

    page.once("dialog", lambda dialog: dialog.dismiss())
    entries.nth(1).get_by_role("button", name="Restore this state").click()
    page.wait_for_timeout(300)
    assert segments.get_segment(live.ctx, pid, key).segment.name == "Second"  # dismissed: unchanged

    # Someone else saves meanwhile: the restore from the stale page is refused, nothing overwritten.
    segments.replace_segment(live.ctx, pid, key, {"key": key, "name": "Third", "included": ["cy"]}, ACTOR)
    page.once("dialog", lambda dialog: dialog.accept())
    entries.nth(1).get_by_role("button", name="Restore this state").click()
    assert "revision" in page.locator("#form-error").inner_text()
    assert segments.get_segment(live.ctx, pid, key).segment.name == "Third"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".timeline li").last.get_by_role("button", name="Restore this state").click()
    assert "Segment restored" in page.locator(".alert-ok").inner_text()
    restored = segments.get_segment(live.ctx, pid, key).segment
    assert (restored.name, restored.included) == ("First", ["ann"])
    newest_entry = page.locator(".timeline li").first
    assert "restored an earlier state" in newest_entry.inner_text()
    assert newest_entry.locator(".who").inner_text().split()[-1] == "Admin"  # audited as the person who restored it


def test_service_messages_in_the_ui_words() -> None:
    from setpoint._server.web.messages import for_ui

    assert (
        for_ui("invalid segment 'a': rules[1].clauses[0]: bad regex")
        == "Invalid segment 'a': rule #2, clause #1: bad regex."
    )
    assert for_ui("overrides.0.conditions.2.value: required") == "Rule #1, condition #3 value: required."
    assert for_ui(
        "x: serialized_value is not valid JSON (Expecting value: line 1 column 1 (char 0)); send the value JSON-encoded"
    ) == ("X: the value is not valid JSON (Expecting value: line 1 column 1 (char 0)); check quotes and commas.")
    assert for_ui("the JSON schema is not valid") == "The JSON schema is not valid."


def test_change_lines_of_a_huge_document_name_the_changed_fields() -> None:
    from setpoint._server.services.audit import MAX_DIFF_LINES, change_lines

    before = {"key": "s", "name": "S", "included": [f"user-{i}" for i in range(MAX_DIFF_LINES)]}
    after = {**before, "included": before["included"][1:], "description": "big"}
    assert change_lines(before, after) == [
        f"@@ too large to show line by line ({MAX_DIFF_LINES + 6} -> {MAX_DIFF_LINES + 6} lines); "
        "changed: description, included @@"
    ]
    assert change_lines({"a": 1}, {"a": 2}) == ["@@ -1,3 +1,3 @@", " {", '-  "a": 1', '+  "a": 2', " }"]


@pytest.mark.parametrize("width", [1360, 1100])
def test_every_nav_link_is_visible_whatever_the_width(page: Page, live: LiveServer, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live.url}/p/default/variables")
    links = page.locator("nav.mainnav a")
    names = [text.strip() for text in links.all_inner_texts()]
    assert {"Variables", "Requests", "Scheduled", "Webhooks", "Audit"} <= {n.split()[0] for n in names}
    nav = page.locator("nav.mainnav").bounding_box()
    assert nav is not None
    for index in range(links.count()):
        box = links.nth(index).bounding_box()
        assert box is not None, names[index]
        # inside the nav's box and the window: not scrolled away or cut off
        assert nav["x"] <= box["x"] and box["x"] + box["width"] <= min(nav["x"] + nav["width"], width) + 0.5, (
            names[index],
            box,
            nav,
        )
