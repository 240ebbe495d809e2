"""Large projects for the scale tests and benchmarks, written in bulk (a few statements, not thousands)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from setpoint._server.storage import Storage
from setpoint._server.storage import schema as t
from setpoint._server.storage.sql import SqlStorage

BETA_OVERRIDE: dict[str, Any] = {
    "conditions": [{"kind": "in-segment", "segment": "beta"}],
    "rollout": {"labels": {"prod": 1.0}},
}


def fill_project(storage: Storage, project_id: int, size: int, *, value_size: int = 0) -> None:
    """``size`` variables ``var_00000``... (each: one version, a pinned label ``prod``, a ref label ``current``;
    every tenth one targets segment ``beta``) and two segments, ``beta`` and ``gamma``. ``value_size`` pads
    each value with that many characters of text."""
    assert isinstance(storage, SqlStorage)
    with storage.write() as tx:
        tx.put_segment(project_id, "beta", {"key": "beta", "name": "Beta", "included": ["u1"]}, None)
        tx.put_segment(project_id, "gamma", {"key": "gamma", "name": "Gamma", "included": ["u2"]}, None)
    now = datetime.now(UTC)
    rollout = json.dumps({"labels": {"prod": 1.0}})
    with storage.engine.begin() as conn:
        conn.execute(
            sa.insert(t.variables),
            [
                {
                    "project_id": project_id,
                    "name": f"var_{i:05d}",
                    "rollout": rollout,
                    "overrides": json.dumps([BETA_OVERRIDE] if i % 10 == 0 else []),
                    "revision": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(size)
            ],
        )
        c = t.variables.c
        ids = {row.name: row.id for row in conn.execute(sa.select(c.name, c.id).where(c.project_id == project_id))}
        pad = "x" * value_size
        conn.execute(
            sa.insert(t.variable_versions),
            [
                {
                    "variable_id": ids[f"var_{i:05d}"],
                    "version": 1,
                    "serialized_value": json.dumps({"n": i, "text": pad} if pad else {"n": i}),
                    "created_by": "seed",
                    "created_at": now,
                }
                for i in range(size)
            ],
        )
        label_rows: list[dict[str, Any]] = []
        for i in range(size):
            vid = ids[f"var_{i:05d}"]
            label_rows.append(
                {
                    "variable_id": vid,
                    "name": "prod",
                    "position": 1,
                    "target_type": "version",
                    "version": 1,
                    "target_label": None,
                    "updated_at": now,
                }
            )
            label_rows.append(
                {
                    "variable_id": vid,
                    "name": "current",
                    "position": 2,
                    "target_type": "latest",
                    "version": None,
                    "target_label": None,
                    "updated_at": now,
                }
            )
        conn.execute(sa.insert(t.labels), label_rows)
