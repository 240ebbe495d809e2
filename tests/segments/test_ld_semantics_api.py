"""LaunchDarkly's segment semantics through the real server (SQLite and PostgreSQL): weighted segment rules
(``weight``, ``bucketBy``, ``rolloutContextKind``, the segment ``salt``) written through the native and the
LaunchDarkly-shaped APIs (create, semantic patch, JSON Patch), stored, served, and evaluated by the server
(OFREP) and the SDK, selecting exactly the contexts LaunchDarkly's own Python SDK selects; attribute
references and the ``kind`` attribute over OFREP; and what Setpoint refuses when it is written."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from ldclient.context import Context
from ldclient.impl.evaluator import Evaluator
from ldclient.impl.events.types import EventFactory
from ldclient.impl.model import FeatureFlag
from ldclient.impl.model import Segment as LdSegment

import setpoint
from setpoint._sdk.registry import registered_variables, restore_registry
from tests.segments.support import App, create_variable, ld_create, ld_patch, ld_url, served_config
from tests.server.support import Project

KEYS = [f"user-{i}" for i in range(200)]


def _ld_members(segment: dict[str, Any], contexts: list[Context]) -> list[bool]:
    """Which contexts LaunchDarkly's Python SDK puts in ``segment`` (its LaunchDarkly representation)."""
    ld_segment = LdSegment({"version": 1, **segment})
    flag = FeatureFlag(
        {
            "key": "f",
            "version": 1,
            "on": True,
            "variations": [False, True],
            "fallthrough": {"variation": 0},
            "offVariation": 0,
            "salt": "f",
            "rules": [
                {
                    "id": "r",
                    "variation": 1,
                    "clauses": [{"attribute": "", "op": "segmentMatch", "values": [segment["key"]]}],
                }
            ],
        }
    )
    evaluator = Evaluator(
        lambda key: None, {segment["key"]: ld_segment}.get, lambda key: (None, "NOT_CONFIGURED"), logging.getLogger()
    )
    details = [evaluator.evaluate(flag, c, EventFactory(False)).detail for c in contexts]
    return [bool(d.value) if d is not None else False for d in details]


def _ofrep(app: App, project: Project, flag: str, context: dict[str, Any]) -> Any:
    response = app.client.post(
        f"/ofrep/v1/evaluate/flags/{flag}", json={"context": context}, headers=project.headers(project.ro_key)
    )
    assert response.status_code == 200, response.text
    return response.json()["value"]


def _sdk_values(app: App, project: Project, flag: str, contexts: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    options = setpoint.RemoteOptions(url=app.url, api_key=project.ro_key, polling_interval=timedelta(seconds=30))
    saved = registered_variables()
    setpoint.configure(remote=options, instrument=False)
    try:
        variable = setpoint.var(flag, type=bool, default=False)
        return [variable.get(targeting_key=key, attributes=attrs).value for key, attrs in contexts]
    finally:
        setpoint.shutdown()
        restore_registry(saved)


def test_weighted_rule_created_through_the_launchdarkly_api_selects_launchdarklys_contexts(
    app: App, project: Project
) -> None:
    rule = {"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"], "contextKind": "user"}], "weight": 30000}
    created = ld_create(app, project, "pro-sample", salt="c0ffee", rules=[rule])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["salt"] == "c0ffee"
    assert {k: body["rules"][0][k] for k in ("weight", "bucketBy", "rolloutContextKind")} == {
        "weight": 30000,
        "bucketBy": None,
        "rolloutContextKind": "user",
    }
    served = served_config(app, project).segments["pro-sample"]
    assert (served.salt, served.rules[0].weight) == ("c0ffee", 30000)
    create_variable(
        app, project, "pro_sample", {"on": True, "off": False}, {"off": 1.0},
        [([{"kind": "in-segment", "segment": "pro-sample"}], {"on": 1.0})],
    )  # fmt: skip

    expected = _ld_members(body, [Context.builder(k).set("plan", "pro").build() for k in KEYS])
    assert 30 < sum(expected) < 90  # about 30% of 200
    server = [_ofrep(app, project, "pro_sample", {"targetingKey": k, "plan": "pro"}) for k in KEYS]
    assert server == expected
    sdk = _sdk_values(app, project, "pro_sample", [(k, {"plan": "pro"}) for k in KEYS])
    assert sdk == expected
    # the clause still has to match first
    assert _ofrep(app, project, "pro_sample", {"targetingKey": KEYS[expected.index(True)], "plan": "free"}) is False


def test_bucket_by_an_attribute_reference_of_another_kind_through_the_native_api(app: App, project: Project) -> None:
    doc = {
        "key": "org-sample",
        "name": "Org sample",
        "salt": "s4lt",
        "rules": [
            {
                "clauses": [
                    {"attribute": "/plan/tier", "op": "in", "values": ["gold"], "context_kind": "organization"}
                ],
                "weight": 50000,
                "bucket_by": "/billing/id",
                "rollout_context_kind": "organization",
            }
        ],
    }
    created = app.client.post("/v1/segments/", json=doc, headers=project.headers())
    assert created.status_code == 201, created.text
    rule = created.json()["rules"][0]
    assert (rule["weight"], rule["bucket_by"], rule["rollout_context_kind"]) == (50000, "/billing/id", "organization")
    create_variable(
        app, project, "org_sample", {"on": True, "off": False}, {"off": 1.0},
        [([{"kind": "in-segment", "segment": "org-sample"}], {"on": 1.0})],
    )  # fmt: skip
    ld_repr = app.client.get(ld_url(project, "org-sample"), headers={"Authorization": project.rw_key}).json()
    assert ld_repr["rules"][0]["bucketBy"] == "/billing/id" and ld_repr["salt"] == "s4lt"

    billing_ids = [f"acct-{i}" for i in range(120)]
    contexts = [
        Context.builder("o").kind("organization").set("plan", {"tier": "gold"}).set("billing", {"id": b}).build()
        for b in billing_ids
    ]
    expected = _ld_members(ld_repr, contexts)
    assert 30 < sum(expected) < 90
    # OFREP: nested context objects (the organization kind) with structured attributes
    server = [
        _ofrep(app, project, "org_sample",
               {"targetingKey": "u", "organization": {"key": "o", "plan": {"tier": "gold"}, "billing": {"id": b}}})
        for b in billing_ids
    ]  # fmt: skip
    assert server == expected
    # the SDK with flat, dotted OpenTelemetry-style attributes: /billing/id reads organization.billing.id
    sdk = _sdk_values(
        app, project, "org_sample",
        [("u", {"organization.key": "o", "organization.plan.tier": "gold", "organization.billing.id": b})
         for b in billing_ids],
    )  # fmt: skip
    assert sdk == expected


def test_weights_through_semantic_patch_and_json_patch(app: App, project: Project) -> None:
    assert ld_create(app, project, "beta").status_code == 201
    clause = {"attribute": "beta", "op": "in", "values": [True], "contextKind": "user"}
    added = ld_patch(
        app, project, "beta",
        [{"kind": "addRule", "clauses": [clause], "weight": 25000, "bucketBy": "email", "rolloutContextKind": "user"}],
    )  # fmt: skip
    assert added.status_code == 200, added.text
    rule = added.json()["rules"][0]
    assert (rule["weight"], rule["bucketBy"], rule["rolloutContextKind"]) == (25000, "email", "user")

    headers = {"Authorization": project.rw_key, "Content-Type": "application/json"}
    patch = [
        {"op": "replace", "path": "/rules/0/weight", "value": 75000},
        {"op": "replace", "path": "/salt", "value": "new-salt"},
    ]
    patched = app.client.patch(ld_url(project, "beta"), content=json.dumps(patch), headers=headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["rules"][0]["weight"] == 75000 and patched.json()["salt"] == "new-salt"
    served = served_config(app, project).segments["beta"]
    assert (served.rules[0].weight, served.rules[0].bucket_by, served.salt) == (75000, "email", "new-salt")

    bad = [{"op": "replace", "path": "/rules/0/weight", "value": 100001}]
    refused = app.client.patch(ld_url(project, "beta"), content=json.dumps(bad), headers=headers)
    assert refused.status_code == 400 and "'weight' must be an integer from 0 to 100000" in refused.json()["message"]
    assert served_config(app, project).segments["beta"].rules[0].weight == 75000  # nothing was written


def test_attribute_references_kind_and_missing_attributes_over_ofrep(app: App, project: Project) -> None:
    rules = [
        {"clauses": [{"attribute": "/address/city", "op": "in", "values": ["Paris"], "contextKind": "user"}]},
        {"clauses": [{"attribute": "kind", "op": "in", "values": ["device"]}]},
        {"clauses": [{"attribute": "name", "op": "in", "values": [""], "negate": True, "contextKind": "org"}]},
    ]
    assert ld_create(app, project, "refs", rules=rules).status_code == 201
    create_variable(
        app, project, "refs_flag", {"on": True, "off": False}, {"off": 1.0},
        [([{"kind": "in-segment", "segment": "refs"}], {"on": 1.0})],
    )  # fmt: skip
    assert _ofrep(app, project, "refs_flag", {"targetingKey": "u", "address": {"city": "Paris"}}) is True
    assert _ofrep(app, project, "refs_flag", {"targetingKey": "u", "address": {"city": "Rome"}}) is False
    assert _ofrep(app, project, "refs_flag", {"targetingKey": "u", "address": "Paris"}) is False
    assert _ofrep(app, project, "refs_flag", {"targetingKey": "u", "device": {"key": "d1"}}) is True
    # a negated clause on an org's name: no org kind, or an org without a name, is never a match
    assert _ofrep(app, project, "refs_flag", {"targetingKey": "u"}) is False
    assert _ofrep(app, project, "refs_flag", {"targetingKey": "u", "org": {"key": "o"}}) is False
    assert _ofrep(app, project, "refs_flag", {"targetingKey": "u", "org": {"key": "o", "name": "Acme"}}) is True


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        ({"attribute": "v", "op": "semVerEqual", "values": ["v1.2.3"]}, "'v1.2.3' is not a semantic version"),
        ({"attribute": "t", "op": "before", "values": ["2024-01-01"]}, "'2024-01-01' is not a timestamp"),
        ({"attribute": "/a//b", "op": "in", "values": [1], "contextKind": "user"}, "empty component"),
    ],
)
def test_configs_launchdarkly_accepts_but_setpoint_refuses_are_400(
    app: App, project: Project, clause: dict[str, Any], message: str
) -> None:
    response = ld_create(app, project, "refused", rules=[{"clauses": [clause]}])
    assert response.status_code == 400 and message in response.json()["message"], response.text
    assert "refused" not in served_config(app, project).segments


HTTP_FILES = {
    "segment-match.yml",
    "segment-recursion.yml",
    "clause-kind-matching.yml",
    "attribute-references.yml",
    "builtin-attrs.yml",
    "negation-and-iteration.yml",
    "rule-match.yml",
}


def _referenced_first(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The segments in an order where each comes after the ones it references (the API refuses the others)."""
    done: list[dict[str, Any]] = []
    pending = list(segments)
    while pending:
        names = {s["key"] for s in done}
        ready = [
            s
            for s in pending
            if all(
                v in names
                for rule in s.get("rules", [])
                for c in rule["clauses"]
                if c.get("op") == "segmentMatch"
                for v in c["values"]
            )
        ]
        assert ready, "a reference cycle"
        done += ready
        pending = [s for s in pending if s not in ready]
    return done


def test_launchdarkly_vectors_through_the_segments_api_and_ofrep(app: App, project: Project) -> None:
    """The vectors about segments, kinds and attribute references, end to end: every segment is created through
    ``/api/v2/segments`` (keys prefixed per vector), a variable's overrides use them, OFREP evaluates."""
    from tests.segments.test_ld_eval_vectors import CASES, _refusal

    ran = 0
    for number, case in enumerate(CASES):
        if case["file"] not in HTTP_FILES or _refusal(case) is not None:
            continue
        prefix = f"v{number}-"
        target = project
        if any("weight" in rule for ld in case["segments"] for rule in ld.get("rules", [])):
            # LaunchDarkly buckets on the segment's key: keep it, in a project of its own
            prefix, target = "", app.other_project()

        def renamed(clauses: list[dict[str, Any]], prefix: str = prefix) -> list[dict[str, Any]]:
            return [
                {**c, "values": [prefix + v for v in c["values"]]} if c.get("op") == "segmentMatch" else c
                for c in clauses
            ]

        for ld in _referenced_first(case["segments"]):
            rules = [{**rule, "clauses": renamed(rule["clauses"])} for rule in ld.get("rules", [])]
            body = {**ld, "key": prefix + ld["key"], "rules": rules}
            response = ld_create(app, target, body.pop("key"), **body)
            assert response.status_code == 201, (case["name"], response.text)
        overrides = []
        for index, clauses in enumerate(case["rules"]):
            key = f"{prefix}rule-{index}"
            assert ld_create(app, target, key, rules=[{"clauses": renamed(clauses)}]).status_code == 201
            overrides.append(([{"kind": "in-segment", "segment": key}], {f"r{index}": 1.0}))
        flag = f"flag_{number}"
        labels = {f"r{index}": index for index in range(len(case["rules"]))}
        create_variable(app, target, flag, {**labels, "none": -1}, {"none": 1.0}, overrides)
        context = {**case["attributes"], **({"targetingKey": case["key"]} if case["key"] is not None else {})}
        value = _ofrep(app, target, flag, context)
        assert value == (-1 if case["expect"] is None else case["expect"]), case["name"]
        ran += 1
    assert ran == 70
