"""Seed 003's segments code (``seed003_client.py``), run against a real ``setpoint serve`` process with only the
base URL and the token changed; the segments it builds then decide a variable's overrides, resolved by the SDK
from the server's config and by the server itself over OFREP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import setpoint
from setpoint._server.services import keys
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import open_storage
from setpoint.config import VariablesConfig
from tests.server.support import ServerProcess

SEED_CLIENT = Path(__file__).with_name("seed003_client.py")
LD_BASE_URL = "https://app.launchdarkly.com"
PROJECT = "default"  # the seed's PROJECT_KEY
VARIABLE = "seed003_ai_model"

pytestmark = pytest.mark.slow

ai_model = setpoint.var(VARIABLE, type=str, default="model-code-default")


class SeedServer:
    """A server process and a read,write key of its ``default`` project."""

    def __init__(self, process: ServerProcess, token: str) -> None:
        self.process = process
        self.token = token

    def client(self, **headers: str) -> httpx.Client:
        """An HTTP client authenticated with the key (``bearer`` scheme unless headers say otherwise)."""
        return httpx.Client(
            base_url=self.process.url, headers={"Authorization": f"bearer {self.token}", **headers}, timeout=30
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seed_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SeedServer]:
    """``setpoint serve`` on a fresh database, with a key for project ``default``."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_database")
    else:
        url = f"sqlite:///{tmp_path / 'setpoint.db'}"
    process = ServerProcess(database_url=url, data_dir=tmp_path)
    process.start()
    storage = open_storage(url)
    try:
        ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
        token = keys.create_key(ctx, PROJECT, frozenset({"read", "write"}), "tests").token
        yield SeedServer(process, token)
    finally:
        storage.dispose()
        process.stop()


def run_seed(server: SeedServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Execute the seed's code as a script: base URL pointed at ``server``, token from the environment."""
    monkeypatch.setenv("LAUNCHDARKLY_API_TOKEN", server.token)
    source = SEED_CLIENT.read_text().replace(LD_BASE_URL, server.process.url)
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(SEED_CLIENT)}
    exec(compile(source, str(SEED_CLIENT), "exec"), namespace)
    return namespace


def _variable_body() -> dict[str, Any]:
    def version(value: str) -> dict[str, Any]:
        return {"target_type": "version", "serialized_value": f'"{value}"'}

    def when_in(segment: str, label: str) -> dict[str, Any]:
        return {"conditions": [{"kind": "in-segment", "segment": segment}], "rollout": {"labels": {label: 1.0}}}

    return {
        "name": VARIABLE,
        "labels": {"stable": version("model-stable"), "beta": version("model-beta"), "ent": version("model-ent")},
        "rollout": {"labels": {"stable": 1.0}},
        "overrides": [
            when_in("enterprise-customers", "ent"),
            when_in("ai-beta-testers", "beta"),
            when_in("beta-testers", "beta"),
            when_in("eu-power-users", "beta"),
        ],
    }


# (targeting key, attributes (flat dotted names, as the SDK sees them), expected label)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("u-1", {}, "stable"),
    ("u-2", {"beta_tester": True, "accountAge": 45}, "beta"),
    ("u-3", {"beta_tester": True, "accountAge": 30}, "stable"),  # greaterThan is strict
    ("u-4", {"beta_tester": True, "accountAge": "45"}, "stable"),  # a string never compares with a number
    ("u-5", {"beta_tester": "true", "accountAge": 45}, "stable"),  # "true" is not true
    ("u-6", {"organization.plan": "enterprise-plus"}, "ent"),
    ("u-7", {"organization.mrr": 20000}, "ent"),
    ("u-8", {"organization.customContract": True}, "ent"),
    ("u-9", {"plan": "enterprise"}, "stable"),  # a user attribute, not the organization's
    ("u-10", {"region": "eu-west", "monthlyUsage": 1500}, "beta"),
    ("u-11", {"region": "us-east", "monthlyUsage": 1500}, "stable"),
    ("user-123", {}, "beta"),  # included in beta-testers by add_contexts_to_segment
    ("u-12", {"beta_opted_in": True}, "beta"),  # beta-testers' rule from the __main__ example
    ("user-999", {"beta_opted_in": True}, "stable"),  # excluded by exclude_contexts_from_segment
]


def _nested(attributes: dict[str, Any]) -> dict[str, Any]:
    """The OFREP form of the attributes: ``organization.plan`` as ``{"organization": {"plan": ...}}``."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        head, dot, rest = name.partition(".")
        if dot:
            out.setdefault(head, {})[rest] = value
        else:
            out[name] = value
    return out


def test_seed003_code_runs_unchanged_and_its_segments_decide_an_override(
    seed_server: SeedServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = run_seed(seed_server, monkeypatch)
    out = capsys.readouterr().out
    assert "[ERROR]" not in out, out
    for line in (
        "[OK] Created segment 'beta-testers'",
        "[OK] Added 1 rules to segment 'beta-testers'",
        "[OK] Created segment 'ai-beta-testers'",
        "[OK] Added targeting rules to segment",
        "[OK] Created segment 'enterprise-customers'",
        "[OK] Added 3 rules to segment",
        "[OK] Created segment 'eu-power-users'",
        "[OK] Added regional targeting rules",
        "[OK] Added 3 contexts to segment",
        "[OK] Excluded 1 contexts from segment",
    ):
        assert line in out

    with seed_server.client() as http:
        listing = http.get(f"/api/v2/segments/{PROJECT}/production", headers={"Authorization": seed_server.token})
        assert listing.status_code == 200
        items = {s["key"]: s for s in listing.json()["items"]}
        assert sorted(items) == ["ai-beta-testers", "beta-testers", "enterprise-customers", "eu-power-users"]
        assert items["beta-testers"]["included"] == ["user-123", "user-456", "user-789"]
        assert items["beta-testers"]["excluded"] == ["user-999"]
        assert items["enterprise-customers"]["tags"] == ["enterprise", "premium", "ai-configs"]
        assert [len(r["clauses"]) for r in items["enterprise-customers"]["rules"]] == [1, 1, 1]
        assert items["enterprise-customers"]["rules"][1]["clauses"][0] == {
            "attribute": "mrr",
            "op": "greaterThan",
            "values": [10000],
            "contextKind": "organization",
            "negate": False,
        }

        created = http.post("/v1/variables/", json=_variable_body())
        assert created.status_code == 201, created.text
        config = VariablesConfig.model_validate_json(http.get("/v1/variables/").content)
        assert set(config.segments) == set(items)

        setpoint.configure(config=config)
        try:
            for key, attributes, label in CASES:
                resolved = ai_model.get(key, attributes)
                assert (resolved.label, resolved.value) == (label, f"model-{label}"), (key, attributes)
                over_ofrep = http.post(
                    f"/ofrep/v1/evaluate/flags/{VARIABLE}",
                    json={"context": {"targetingKey": key, **_nested(attributes)}},
                )
                assert over_ofrep.json()["variant"] == label, (key, attributes, over_ofrep.json())
        finally:
            setpoint.shutdown()

    # The class's other methods: an existing key (409 -> the existing segment), limit, delete, delete refused.
    segments = namespace["AIConfigSegments"](seed_server.token, PROJECT, "production")
    existing = segments.create_segment("beta-testers", "Beta Testers")
    assert existing["key"] == "beta-testers"
    assert len(segments.list_segments(limit=2)) == 2
    scratch = f"scratch-{uuid.uuid4().hex[:6]}"
    assert segments.create_segment(scratch, "Scratch", description="to delete", tags=["tmp"])["tags"] == ["tmp"]
    assert segments.delete_segment(scratch) is True
    assert segments.get_segment(scratch) is None
    assert segments.delete_segment("ai-beta-testers") is False
    out = capsys.readouterr().out
    assert "[WARNING] Segment 'beta-testers' already exists" in out
    assert f"[OK] Deleted segment '{scratch}'" in out
    assert "is still used by variable(s) seed003_ai_model" in out
