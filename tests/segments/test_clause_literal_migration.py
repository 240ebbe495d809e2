"""Migration 0010 on SQLite and PostgreSQL: segments stored before the strict (LaunchDarkly) parsing keep
loading and keep their meaning: lenient dates and versions become their strict forms, an attribute that is not
a valid reference becomes the escaped reference to that literal name, and nothing else changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from setpoint._core.evaluator import compile_config
from setpoint._server.storage import migrate
from setpoint._server.storage.engines import normalize_url
from setpoint.config import Segment, VariablesConfig

LEGACY = {
    "key": "legacy",
    "name": "Legacy",
    "rules": [
        {"clauses": [{"attribute": "signup", "op": "before", "values": ["2024-01-01", "2024-06-01T12:00:00"]}]},
        {"clauses": [{"attribute": "seen", "op": "after", "values": ["2024-01-01T01:00:00+01:00", 1704067200000]}]},
        {"clauses": [{"attribute": "app", "op": "semVerEqual", "values": ["v2.0", " 3.1.0 ", "4.0.0"]}]},
        {"clauses": [{"attribute": "/odd//name", "op": "in", "values": ["x"]}]},
        {"clauses": [{"attribute": "/address/city", "op": "in", "values": ["Paris"]}]},
    ],
}
EXPECTED_RULES = [
    ["2024-01-01T00:00:00Z", "2024-06-01T12:00:00Z"],
    ["2024-01-01T01:00:00+01:00", 1704067200000],  # already RFC 3339: untouched
    ["2.0.0", "3.1.0", "4.0.0"],
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "sqlite":
        return sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    url: str = request.getfixturevalue("postgres_database")
    return sa.create_engine(normalize_url(url))


def _insert(engine: sa.Engine, docs: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projects (id, name, created_at) VALUES (1, 'p', CURRENT_TIMESTAMP)"))
        for index, doc in enumerate(docs, 1):
            conn.execute(
                sa.text(
                    "INSERT INTO segments (id, project_id, key, data, revision, updated_at) "
                    "VALUES (:id, 1, :key, :data, 1, CURRENT_TIMESTAMP)"
                ),
                {"id": index, "key": doc["key"], "data": json.dumps(doc)},
            )


def _stored(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT key, data FROM segments")).all()
    return {key: json.loads(data) for key, data in rows}


def test_legacy_literals_are_rewritten_into_strict_forms_that_mean_the_same(engine: sa.Engine) -> None:
    strict = {"key": "strict", "name": "Strict", "rules": [{"clauses": [{"attribute": "t", "op": "before",
              "values": ["2024-01-01T00:00:00.5+02:00"]}]}]}  # fmt: skip
    try:
        migrate.upgrade(engine, "0005")
        _insert(engine, [LEGACY, strict])
        with pytest.raises(ValueError, match="is not a timestamp"):
            Segment.model_validate(LEGACY)  # what the stored data would do without the migration
        migrate.upgrade(engine)
        stored = _stored(engine)
    finally:
        engine.dispose()
    assert stored["strict"] == strict  # untouched
    rules = stored["legacy"]["rules"]
    assert [rule["clauses"][0]["values"] for rule in rules[:3]] == EXPECTED_RULES
    assert rules[3]["clauses"][0]["attribute"] == "/~1odd~1~1name"
    assert rules[4]["clauses"][0]["attribute"] == "/address/city"  # a valid reference stays one
    config = VariablesConfig.model_validate({"variables": {}, "segments": stored})
    member = compile_config(config).segments["legacy"]
    assert member("u", {"signup": "2023-12-31T23:59:59Z"}) is True
    assert member("u", {"seen": 1704067200001}) is True
    assert member("u", {"app": "2.0.0"}) is True
    assert member("u", {"/odd//name": "x"}) is True  # the literal name it always was
    assert member("u", {"signup": "2024-06-02T00:00:00Z", "app": "2.0.1"}) is False
