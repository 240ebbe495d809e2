"""The Segments pages: journeys in headless Chromium against a real server, plain-HTTP form posts, and the
form <-> segment conversion (segments_form) with its edge cases."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import pytest

import setpoint
from setpoint._sdk.registry import registered_variables, restore_registry
from setpoint._server.services import editing, keys, lifecycle
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.segments import service as segments
from setpoint._server.web import segments_form
from setpoint.config import SEGMENT_OPS, Segment, VariablesConfig
from tests.manage.live import LiveServer
from tests.web.conftest import login
from tests.web.test_sessions import _login

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

ACTOR = "user:admin"
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _project_id(live: LiveServer) -> int:
    with live.ctx.storage.read() as tx:
        project = tx.get_project("default")
    assert project is not None
    return project.id


def _new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _create_segment(live: LiveServer, key: str, **extra: Any) -> None:
    segments.create_segment(live.ctx, _project_id(live), {"key": key, "name": key.title(), **extra}, ACTOR)


def _stored(live: LiveServer, key: str) -> Segment:
    return segments.get_segment(live.ctx, _project_id(live), key).segment


def _variable_using(live: LiveServer, name: str, segment: str) -> None:
    """A boolean variable: ``on`` for contexts in ``segment``, the code default (False) for everyone else."""
    pid = _project_id(live)
    lifecycle.create_variable(live.ctx, pid, name, ACTOR, kind="boolean")
    editing.create_version(live.ctx, pid, name, "true", ACTOR, label="on")
    rule = {"conditions": [{"kind": "in-segment", "segment": segment}], "rollout": {"labels": {"on": 1.0}}}
    editing.set_targeting(live.ctx, pid, name, {"labels": {}}, [rule], ACTOR)


def _encode(items: list[tuple[str, str]]) -> bytes:
    return urlencode(items).encode()


def _sdk_config(live: LiveServer) -> VariablesConfig:
    token = keys.create_key(live.ctx, "default", frozenset({"read"}), "tests").token
    response = httpx.get(f"{live.url}/v1/variables/", headers={"Authorization": f"bearer {token}"})
    return VariablesConfig.model_validate(response.json())


def _simulate(page: Page, live: LiveServer, key: str, attributes: str, variable: str) -> str:
    page.goto(f"{live.url}/p/default/simulator")
    page.get_by_label("Targeting key").fill(key)
    page.get_by_label("Attributes").fill(attributes)
    page.get_by_role("button", name="Simulate").click()
    return page.locator(f'tr[data-variable="{variable}"] [data-col="label"]').inner_text()


def _user_keys(page: Page) -> Locator:
    return page.locator("[data-target]").first


# --- Browser journeys -------------------------------------------------------------------------------------


@pytest.mark.browser
def test_segment_journey(page: Page, live: LiveServer) -> None:
    key = _new_key("beta")
    page.get_by_role("link", name="Segments").click()
    page.wait_for_url("**/segments")
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Key").fill(key)
    page.get_by_label("Name").fill("Beta testers")
    page.get_by_label("Description").fill("People who try things first")
    page.get_by_label("Tags").fill("beta, internal, beta")
    page.get_by_role("button", name="Create segment").click()
    page.wait_for_url(f"**/segments/{key}?*")
    assert "Segment created" in page.locator(".alert-ok").inner_text()

    # Included keys (blank lines, whitespace and duplicates are dropped; the count follows as you type).
    users = _user_keys(page)
    users.get_by_label("Included keys").fill("alice\n  bob  \n\nalice\n")
    assert users.locator("[data-keylist]").first.locator("[data-count]").inner_text() == "2"
    users.get_by_label("Excluded keys").fill("mallory")

    # A rule with two clauses, the second negated.
    page.get_by_role("button", name="+ Add rule").click()
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    options = rule.get_by_label("Operator").locator("option").evaluate_all("els => els.map(e => e.value)")
    assert options == list(SEGMENT_OPS)
    rule.get_by_label("Attribute").fill("plan")
    rule.get_by_label("Operator").select_option(label="is one of")
    rule.get_by_label("Values").fill("enterprise\nbusiness")
    rule.get_by_role("button", name="+ Add clause").click()
    second = rule.locator("[data-clause]").nth(1)
    second.get_by_label("Match").select_option("yes")
    second.get_by_label("Attribute").fill("email")
    second.get_by_label("Operator").select_option("endsWith")
    second.get_by_label("Values").fill("@blocked.example")
    page.get_by_role("button", name="Save segment").click()
    assert "Segment saved" in page.locator(".alert-ok").inner_text()

    # Reloaded, everything is there.
    page.reload()
    users = _user_keys(page)
    assert users.get_by_label("Included keys").input_value() == "alice\nbob"
    assert users.get_by_label("Excluded keys").input_value() == "mallory"
    assert page.get_by_label("Tags").input_value() == "beta, internal"
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    assert rule.locator("[data-clause]").count() == 2
    second = rule.locator("[data-clause]").nth(1)
    assert second.get_by_label("Match").input_value() == "yes"
    assert second.get_by_label("Operator").input_value() == "endsWith"
    assert rule.locator("[data-clause]").first.get_by_label("Values").input_value() == "enterprise\nbusiness"
    stored = _stored(live, key)
    assert stored.included == ["alice", "bob"]
    assert stored.excluded == ["mallory"]
    assert [(c.attribute, c.op, c.values, c.negate) for c in stored.rules[0].clauses] == [
        ("plan", "in", ["enterprise", "business"], False),
        ("email", "endsWith", ["@blocked.example"], True),
    ]

    # A variable's targeting rule uses the segment: the simulator and the SDK follow it.
    variable = f"flag_{uuid.uuid4().hex[:6]}"
    _variable_using(live, variable, key)
    cases = [
        ("alice", "", True),
        ("carol", "", False),
        ("carol", "plan=enterprise\nemail=carol@example.com", True),
        ("carol", "plan=enterprise", False),  # no email: the negated clause does not match a missing attribute
        ("dave", "plan=enterprise\nemail=dave@blocked.example", False),
        ("mallory", "plan=enterprise", False),
    ]
    saved = registered_variables()
    flag = setpoint.var(variable, type=bool, default=False)
    setpoint.configure(config=_sdk_config(live), instrument=False)
    try:
        for target_key, attributes, inside in cases:
            label = _simulate(page, live, target_key, attributes, variable)
            assert ("on" in label) is inside, (target_key, attributes, label)
            attrs = dict(line.split("=", 1) for line in attributes.splitlines())
            assert flag.get(target_key, attrs).value is inside
    finally:
        setpoint.shutdown()
        restore_registry(saved)

    # The list shows counts and who uses the segment.
    page.goto(f"{live.url}/p/default/segments")
    row = page.locator(f'tr[data-segment="{key}"]')
    assert row.locator('[data-col="included"]').inner_text() == "2"
    assert row.locator('[data-col="excluded"]').inner_text() == "1"
    assert row.locator('[data-col="rules"]').inner_text() == "1"
    assert variable in row.locator('[data-col="used-by"]').inner_text()

    # History: created, then changed.
    row.get_by_role("link", name=key).click()
    page.get_by_role("link", name="History").click()
    history = page.locator("[data-history]").inner_text()
    assert "created the segment" in history
    assert "changed" in history and "included" in history and "rules" in history

    # Delete: refused while the variable uses it (naming it), allowed once it does not.
    page.get_by_role("link", name="Segment", exact=True).click()
    page.get_by_label("to confirm").fill(key)
    page.get_by_role("button", name="Delete this segment").click()
    refused = page.locator("#delete-error").inner_text()
    assert "still used by" in refused and variable in refused
    editing.set_targeting(live.ctx, _project_id(live), variable, {"labels": {}}, [], ACTOR)
    page.get_by_label("to confirm").fill("not-the-key")
    page.get_by_role("button", name="Delete this segment").click()
    assert "to confirm" in page.locator("#delete-error").inner_text()
    page.get_by_label("to confirm").fill(key)
    page.get_by_role("button", name="Delete this segment").click()
    page.wait_for_url("**/segments?*")
    assert f"Deleted segment '{key}'" in page.locator(".alert-ok").inner_text()
    assert page.locator(f'tr[data-segment="{key}"]').count() == 0


@pytest.mark.browser
def test_invalid_input_is_refused_and_kept(page: Page, live: LiveServer) -> None:
    key = _new_key("regex")
    _create_segment(live, key)
    page.goto(f"{live.url}/p/default/segments/{key}")
    _user_keys(page).get_by_label("Included keys").fill("zoe")
    page.get_by_role("button", name="+ Add rule").click()
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    rule.get_by_label("Attribute").fill("email")
    rule.get_by_label("Operator").select_option("matches")
    rule.get_by_label("Values").fill("([unclosed")
    page.get_by_role("button", name="Save segment").click()
    error = page.locator("#form-error").inner_text()
    assert "invalid regular expression '([unclosed'" in error
    # What the user typed is still there, the stored segment unchanged.
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    assert rule.get_by_label("Values").input_value() == "([unclosed"
    assert rule.get_by_label("Operator").input_value() == "matches"
    assert _user_keys(page).get_by_label("Included keys").input_value() == "zoe"
    assert _stored(live, key).rules == []
    assert _stored(live, key).included == []

    # A semver that is not one, then a clause moved and removed; a number operator with text.
    rule.get_by_label("Operator").select_option("semVerEqual")
    rule.get_by_label("Values").fill("1.x")
    page.get_by_role("button", name="Save segment").click()
    assert "'1.x' is not a semantic version" in page.locator("#form-error").inner_text()
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    rule.get_by_label("Operator").select_option("greaterThan")
    rule.get_by_label("Values").fill("lots")
    page.get_by_role("button", name="Save segment").click()
    assert "'lots' is not a number" in page.locator("#form-error").inner_text()

    # A cycle through segmentMatch clauses is refused naming it.
    other = _new_key("other")
    _create_segment(live, other, rules=[{"clauses": [{"attribute": "key", "op": "segmentMatch", "values": [key]}]}])
    page.goto(f"{live.url}/p/default/segments/{key}")
    page.get_by_role("button", name="+ Add rule").click()
    rule = page.locator("[data-seg-rules] [data-seg-rule]").first
    rule.get_by_label("Attribute").fill("key")
    rule.get_by_label("Operator").select_option("segmentMatch")
    rule.get_by_label("Values").fill(other)
    page.get_by_role("button", name="Save segment").click()
    assert "cycle" in page.locator("#form-error").inner_text()


@pytest.mark.browser
def test_rules_and_clauses_reorder_and_remove(page: Page, live: LiveServer) -> None:
    key = _new_key("order")
    _create_segment(live, key)
    page.goto(f"{live.url}/p/default/segments/{key}")
    for attribute in ("first", "second"):
        page.get_by_role("button", name="+ Add rule").click()
        rule = page.locator("[data-seg-rules] [data-seg-rule]").last
        rule.get_by_label("Attribute").fill(attribute)
        rule.get_by_label("Values").fill("x")
    last = page.locator("[data-seg-rules] [data-seg-rule]").nth(1)
    last.get_by_role("button", name="+ Add clause").click()
    added = last.locator("[data-clause]").nth(1)
    added.get_by_label("Attribute").fill("moved")
    added.get_by_label("Context kind").fill("organization")
    added.get_by_label("Values").fill("y")
    added.get_by_role("button", name="Move clause up").click()
    last.get_by_role("button", name="Move rule up").click()
    page.locator("[data-seg-rules] [data-seg-rule]").nth(1).get_by_role("button", name="Delete rule").click()
    # A second context kind with its own keys.
    page.get_by_role("button", name="+ Add context kind").click()
    target = page.locator("[data-target]").nth(1)
    target.get_by_label("Context kind").fill("organization")
    target.get_by_label("Included keys").fill("acme")
    page.get_by_role("button", name="Save segment").click()
    assert "Segment saved" in page.locator(".alert-ok").inner_text()
    stored = _stored(live, key)
    assert len(stored.rules) == 1
    assert [(c.attribute, c.context_kind) for c in stored.rules[0].clauses] == [
        ("moved", "organization"),
        ("second", "user"),
    ]
    assert [(t.context_kind, t.values) for t in stored.included_contexts] == [("organization", ["acme"])]


@pytest.mark.browser
def test_a_weighted_rule_is_shown_and_edited_and_keeps_its_salt(page: Page, live: LiveServer) -> None:
    key = _new_key("weighted")
    rule = {
        "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
        "weight": 30000,
        "bucket_by": "/org/id",
    }
    _create_segment(live, key, rules=[rule], salt="from-launchdarkly")
    page.goto(f"{live.url}/p/default/segments/{key}")
    shown = page.locator("[data-seg-rules] [data-seg-rule]").first
    assert shown.get_by_label("Percentage of the matching contexts").input_value() == "30"
    assert shown.get_by_label("Bucket by").input_value() == "/org/id"
    shown.get_by_label("Percentage of the matching contexts").fill("45.5")
    page.get_by_role("button", name="Save segment").click()
    assert "Segment saved" in page.locator(".alert-ok").inner_text()
    stored = _stored(live, key)
    assert (stored.rules[0].weight, stored.rules[0].bucket_by, stored.salt) == (45500, "/org/id", "from-launchdarkly")
    # an impossible percentage is refused and kept in the form
    page.locator("[data-seg-rules] [data-seg-rule]").first.get_by_label("Percentage of the matching contexts").fill(
        "150"
    )
    page.get_by_role("button", name="Save segment").click()
    assert "from 0 to 100" in page.locator(".alert-error").inner_text()
    assert _stored(live, key).rules[0].weight == 45500


@pytest.mark.browser
def test_stale_edit_is_refused(browser: Browser, live: LiveServer) -> None:
    key = _new_key("stale")
    _create_segment(live, key)
    alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
    try:
        alice, bob = login(alice_ctx, live), login(bob_ctx, live)
        for who in (alice, bob):
            who.goto(f"{live.url}/p/default/segments/{key}")
        alice.get_by_label("Name").fill("Alice's name")
        alice.get_by_role("button", name="Save segment").click()
        assert "Segment saved" in alice.locator(".alert-ok").inner_text()
        bob.get_by_label("Name").fill("Bob's name")
        _user_keys(bob).get_by_label("Included keys").fill("bob")
        bob.get_by_role("button", name="Save segment").click()
        error = bob.locator("#form-error").inner_text()
        assert "someone changed it since you read it" in error
        assert bob.get_by_label("Name").input_value() == "Alice's name"  # the saved state, not Bob's refused edit
        assert _stored(live, key).name == "Alice's name"
        assert _stored(live, key).included == []
        # A stale delete is refused too.
        alice.reload()
        alice.get_by_label("Name").fill("Alice again")
        alice.get_by_role("button", name="Save segment").click()
        bob.get_by_label("to confirm").fill(key)
        bob.get_by_role("button", name="Delete this segment").click()
        assert "someone changed it" in bob.locator("#delete-error").inner_text()
    finally:
        alice_ctx.close()
        bob_ctx.close()


# --- Plain HTTP ---------------------------------------------------------------------------------------------


@pytest.fixture
def http(live: LiveServer) -> Iterator[tuple[httpx.Client, str]]:
    """A logged-in HTTP client and its CSRF token."""
    with httpx.Client(base_url=live.url, timeout=10) as client:
        _login(client, live.admin_password)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/p/default/segments").text)
        assert token is not None
        yield client, token.group(1)


def test_create_form_validates_the_key_and_keeps_input(http: tuple[httpx.Client, str], live: LiveServer) -> None:
    client, csrf = http
    data = {"key": "-bad key", "name": "Bad", "description": "kept", "tags": "a, b", "csrf_token": csrf}
    refused = client.post("/p/default/segments/new", data=data)
    assert refused.status_code == 400
    assert "key" in refused.text and 'value="kept"' in refused.text and 'value="a, b"' in refused.text
    key = _new_key("ok")
    created = client.post("/p/default/segments/new", data={**data, "key": key})
    assert created.status_code == 303
    assert created.headers["location"].startswith(f"/p/default/segments/{key}?")
    assert _stored(live, key).tags == ["a", "b"]
    again = client.post("/p/default/segments/new", data={**data, "key": key})
    assert again.status_code == 409
    assert "already exists" in again.text
    no_csrf = client.post("/p/default/segments/new", data={**data, "csrf_token": "nope", "key": _new_key("x")})
    assert no_csrf.status_code == 403


def test_posted_keys_are_trimmed_and_deduplicated(http: tuple[httpx.Client, str], live: LiveServer) -> None:
    client, csrf = http
    key = _new_key("trim")
    _create_segment(live, key)
    form = [
        ("csrf_token", csrf),
        ("revision", str(segments.get_segment(live.ctx, _project_id(live), key).revision)),
        ("name", "  Trimmed  "),
        ("description", "   "),
        ("tags", " x ,, y ,x\n z "),
        ("target_kind", "user"),
        ("included", "\r\n  a \r\n\r\nb\r\na\r\n   \r\n"),
        ("excluded", ""),
        ("target_kind", "  "),
        ("included", "\n \n"),
        ("excluded", ""),
        ("target_kind", "org"),
        ("included", "o1\no1"),
        ("excluded", "o2"),
    ]
    response = client.post(f"/p/default/segments/{key}", content=_encode(form), headers=_FORM)
    assert response.status_code == 303, response.text
    stored = _stored(live, key)
    assert stored.name == "Trimmed"
    assert stored.description is None
    assert stored.tags == ["x", "y", "z"]
    assert stored.included == ["a", "b"]
    assert [(t.context_kind, t.values) for t in stored.included_contexts] == [("org", ["o1"])]
    assert [(t.context_kind, t.values) for t in stored.excluded_contexts] == [("org", ["o2"])]


def test_large_lists_are_not_rendered_in_full(http: tuple[httpx.Client, str], live: LiveServer) -> None:
    client, csrf = http
    key = _new_key("large")
    many = [f"user-{i:04d}" for i in range(segments_form.SHOWN_KEYS + 50)]
    _create_segment(live, key, included=many)
    html = client.get(f"/p/default/segments/{key}").text
    assert "user-0000" in html and f"user-{segments_form.SHOWN_KEYS - 1:04d}" in html
    assert f"user-{segments_form.SHOWN_KEYS:04d}" not in html
    assert f"first {segments_form.SHOWN_KEYS} of {len(many)} keys" in html
    revision = str(segments.get_segment(live.ctx, _project_id(live), key).revision)
    form = [
        ("csrf_token", csrf),
        ("revision", revision),
        ("name", "Large"),
        ("target_kind", "user"),
        ("included_add", "new-1\nuser-0001\nnew-1"),
        ("included_remove", "user-0000\nuser-0249"),
        ("excluded", ""),
    ]
    response = client.post(f"/p/default/segments/{key}", content=_encode(form), headers=_FORM)
    assert response.status_code == 303, response.text
    stored = _stored(live, key).included
    assert len(stored) == len(many) - 2 + 1
    assert stored[0] == "user-0001" and stored[-1] == "new-1"
    assert "user-0000" not in stored and "user-0249" not in stored
    listing = client.get("/p/default/segments").text
    assert f'data-col="included">{len(stored)}<' in listing


def test_segment_pages_need_a_login(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        response = client.get("/p/default/segments")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        assert client.get("/p/default/segments/nope").status_code == 303


def test_unknown_segment_is_a_404_page(http: tuple[httpx.Client, str]) -> None:
    client, _ = http
    response = client.get("/p/default/segments/does-not-exist")
    assert response.status_code == 404
    assert "does not exist" in response.text


# --- segments_form ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("\n\n  \n", []),
        ("a\nb", ["a", "b"]),
        ("  a  \r\n\tb\t\r\n", ["a", "b"]),
        ("a\na\n a \nb\na", ["a", "b"]),
        ("with inner space\n", ["with inner space"]),
    ],
)
def test_keys_of(text: str, expected: list[str]) -> None:
    assert segments_form.keys_of(text) == expected


def _clause_items(op: str, values: str, negate: str = "no", attribute: str = "attr") -> list[tuple[str, str]]:
    return [
        ("clause_negate", negate),
        ("clause_context_kind", "user"),
        ("clause_attribute", attribute),
        ("clause_op", op),
        ("clause_values", values),
    ]


def test_values_are_typed_per_operator() -> None:
    items = [
        ("name", "N"),
        ("rule", "1"),
        *_clause_items("in", '1\ntrue\n"2"\ntext\n\n'),
        *_clause_items("greaterThan", "1.5\n 2 "),
        *_clause_items("before", "1700000000000\n2030-01-01T00:00:00Z"),
        *_clause_items("startsWith", "10\n a b "),
    ]
    data = segments_form.from_form("k", items).to_data()
    values = [c["values"] for c in data["rules"][0]["clauses"]]
    assert values == [[1, True, "2", "text"], [1.5, 2], [1700000000000, "2030-01-01T00:00:00Z"], ["10", "a b"]]
    Segment.model_validate(data)


def test_a_saved_segment_round_trips_through_the_form() -> None:
    segment = Segment.model_validate(
        {
            "key": "k",
            "name": "N",
            "description": "d",
            "tags": ["t1", "t2"],
            "included": ["a"],
            "excluded": ["b"],
            "included_contexts": [{"context_kind": "org", "values": ["o"]}],
            "rules": [
                {
                    "id": "r1",
                    "description": "first",
                    "clauses": [
                        {"attribute": "n", "op": "in", "values": [1, "1", "x", True], "negate": True},
                        {"attribute": "v", "op": "semVerLessThan", "values": ["2.0.0"], "context_kind": "device"},
                    ],
                },
                {
                    "id": "r2",
                    "clauses": [{"attribute": "/address/city", "op": "in", "values": ["Paris"]}],
                    "weight": 12345,
                    "bucket_by": "/org/id",
                    "rollout_context_kind": "org",
                },
            ],
            "salt": "pepper",
        }
    )
    draft = segments_form.from_segment(segment)
    assert draft.rules[1].weight == "12.345"
    items: list[tuple[str, str]] = [("name", draft.name), ("description", draft.description), ("tags", draft.tags)]
    for target in draft.targets:
        items += [("target_kind", target.kind), ("included", target.included.text), ("excluded", target.excluded.text)]
    for rule in draft.rules:
        items += [("rule", "1"), ("rule_id", rule.id), ("rule_description", rule.description)]
        items += [
            ("rule_weight", rule.weight),
            ("rule_bucket_by", rule.bucket_by),
            ("rule_rollout_context_kind", rule.rollout_context_kind),
        ]
        for c in rule.clauses:
            items += [
                ("clause_negate", "yes" if c.negate else "no"),
                ("clause_context_kind", c.context_kind),
                ("clause_attribute", c.attribute),
                ("clause_op", c.op),
                ("clause_values", c.values),
            ]
    again = Segment.model_validate(segments_form.from_form("k", items, segment).to_data())
    assert again == segment


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([("rule", "1"), *_clause_items("shouts", "x")], "unknown operator 'shouts'"),
        ([("rule", "1"), *_clause_items("in", "\n \n")], "rule #1, clause #1: enter at least one value"),
        ([("rule", "1"), *_clause_items("in", "x", attribute=" ")], "enter the attribute name"),
        ([("rule", "1"), *_clause_items("lessThan", "true")], "'true' is not a number"),
        ([("rule", "1")], "rule #1: add at least one clause"),
        ([("rule", "1"), ("rule_weight", "101"), *_clause_items("in", "x")], "from 0 to 100 (at most 3 decimals)"),
        ([("rule", "1"), ("rule_weight", "1.0001"), *_clause_items("in", "x")], "at most 3 decimals"),
        ([("rule", "1"), ("rule_weight", "half"), *_clause_items("in", "x")], "got 'half'"),
        ([("rule", "1"), ("rule_bucket_by", "org"), *_clause_items("in", "x")], "enter the percentage"),
        ([("target_kind", ""), ("included", "orphan")], "enter the context kind"),
    ],
)
def test_form_mistakes_are_explained(items: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidError, match=re.escape(message)):
        segments_form.from_form("k", [("name", "N"), *items]).to_data()


def test_unknown_fields_and_orphans_are_ignored() -> None:
    items = [
        ("name", "N"),
        ("included", "before any kind"),
        ("clause_attribute", "before any rule"),
        ("rule_id", "orphan"),
        ("surprise", "x"),
        ("target_kind", "user"),
        ("included", "a"),
    ]
    data = segments_form.from_form("k", items).to_data()
    assert data["included"] == ["a"]
    assert data["rules"] == []


def test_every_operator_has_a_label() -> None:
    assert list(segments_form.OP_LABELS) == list(SEGMENT_OPS)
