"""A write costs what it touches: the same SQL statements and the same variables validated in a project of
10 variables as in one of 1,000, on SQLite and PostgreSQL, with the same guarantees (references checked,
stale edits refused, audit)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from setpoint._server.services import editing, lifecycle
from setpoint._server.services import variables as var_service
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ConflictError, ForbiddenError, InvalidError, PreconditionFailedError
from setpoint._server.services.models import VariableIn
from setpoint._server.services.people import protected
from setpoint._server.services.segments import service as segments
from setpoint._server.storage import Storage
from setpoint._server.storage.records import LabelTarget
from setpoint._server.storage.sql import SqlStorage
from setpoint.config import VariableConfig
from tests.server.conftest import BACKENDS
from tests.server.people_support import make_person
from tests.server.scale_support import BETA_OVERRIDE, fill_project

pytestmark = pytest.mark.parametrize("storage", BACKENDS, indirect=True)


@dataclass
class Cost:
    """What one write did: SQL statements run, and which variables were validated (by name)."""

    statements: int = 0
    validated: Counter[str] = field(default_factory=Counter)


class Meter:
    """Counts the SQL statements sent to a storage and the `VariableConfig` validations made meanwhile."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        assert isinstance(storage, SqlStorage)
        self._active: Cost | None = None
        sa.event.listen(storage.engine, "before_cursor_execute", self._on_execute)
        # Every variable of these projects has a label ref, so each validation of a variable checks one ref
        # chain: counting those calls counts the variables validated, whatever path validates them.
        original = VariableConfig._check_ref_chain
        meter = self

        def counting(self: VariableConfig, start: str, ref: Any) -> None:
            if meter._active is not None:
                meter._active.validated[self.name] += 1
            original(self, start, ref)

        monkeypatch.setattr(VariableConfig, "_check_ref_chain", counting)

    def _on_execute(self, *_args: Any) -> None:
        if self._active is not None:
            self._active.statements += 1

    @contextmanager
    def measure(self) -> Iterator[Cost]:
        cost = Cost()
        self._active = cost
        try:
            yield cost
        finally:
            self._active = None


def _fill(ctx: ServiceContext, size: int) -> int:
    with ctx.storage.write() as tx:
        project = tx.create_project(f"p-{uuid.uuid4().hex[:10]}")
    fill_project(ctx.storage, project.id, size)
    return project.id


Write = Callable[[ServiceContext, int], object]


def _writes() -> dict[str, Write]:
    def new_version(ctx: ServiceContext, pid: int) -> object:
        return editing.create_version(ctx, pid, "var_00005", '{"n": -1}', "me", label="prod")

    def targeting(ctx: ServiceContext, pid: int) -> object:
        return editing.set_targeting(ctx, pid, "var_00005", {"labels": {"prod": 0.5}}, [BETA_OVERRIDE], "me")

    def move_label(ctx: ServiceContext, pid: int) -> object:
        return editing.set_label(ctx, pid, "var_00005", "canary", LabelTarget("latest"), "me")

    def aliases(ctx: ServiceContext, pid: int) -> object:
        return editing.update_details(ctx, pid, "var_00005", "me", aliases=["five"], set_aliases=True)

    def rename(ctx: ServiceContext, pid: int) -> object:
        return lifecycle.rename_variable(ctx, pid, "var_00006", "var_six", "me")

    def replace(ctx: ServiceContext, pid: int) -> object:
        labels: dict[str, Any] = {
            "prod": {"target_type": "version", "version": 1},
            "current": {"target_type": "latest"},
        }
        body = VariableIn.model_validate({"name": "var_00007", "labels": labels, "rollout": {"labels": {"prod": 1}}})
        return var_service.replace_variable(ctx, pid, "var_00007", body, "me")

    def segment_replace(ctx: ServiceContext, pid: int) -> object:
        return segments.replace_segment(ctx, pid, "beta", {"name": "Beta", "included": ["u1", "u3"]}, "me")

    def segment_delete(ctx: ServiceContext, pid: int) -> object:
        segments.delete_segment(ctx, pid, "gamma", "me")
        return None

    return {
        "new_version": new_version,
        "targeting": targeting,
        "move_label": move_label,
        "aliases": aliases,
        "rename": rename,
        "replace": replace,
        "segment_replace": segment_replace,
        "segment_delete": segment_delete,
    }


def test_every_write_costs_the_same_at_10_and_1000_variables(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    small, large = _fill(ctx, 10), _fill(ctx, 1000)
    meter = Meter(storage, monkeypatch)
    costs: dict[str, tuple[Cost, Cost]] = {}
    for name, write in _writes().items():
        measured = []
        for project_id in (small, large):
            with meter.measure() as cost:
                write(ctx, project_id)
            measured.append(cost)
        costs[name] = (measured[0], measured[1])
    for name, (at_10, at_1000) in costs.items():
        assert at_10.statements == at_1000.statements, (name, at_10.statements, at_1000.statements)
        assert at_10.validated == at_1000.validated, (name, at_10.validated, at_1000.validated)
        assert at_10.statements < 40, (name, at_10.statements)
    # Variable writes validate only the variable written (renamed: under its new name); segment writes none.
    for name in ("new_version", "targeting", "move_label", "aliases", "replace"):
        assert set(costs[name][1].validated) <= {"var_00005", "var_00007"}, name
        assert 0 < sum(costs[name][1].validated.values()) <= 3 * 2, (name, costs[name][1].validated)  # 2 ref labels
    assert set(costs["rename"][1].validated) == {"var_six"}
    assert not costs["segment_replace"][1].validated and not costs["segment_delete"][1].validated


def test_an_editors_segment_change_checks_protected_labels_at_the_same_cost(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The protected-label check of a segment change reads the segment's referrers only: the same statements at
    10 variables (1 uses ``beta``) as at 1,000 (100 use it), and the refusal names every one of them."""
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    meter = Meter(storage, monkeypatch)
    costs: list[Cost] = []
    for size in (10, 1000):
        pid = _fill(ctx, size)
        protected.set_protected(ctx, pid, ("prod",), "tests")
        with storage.read() as tx:
            project = tx.get_project_by_id(pid)
        assert project is not None
        editor = make_person(ctx, "Eddie Editor", project=project.name, role="editor")
        with meter.measure() as cost, pytest.raises(ForbiddenError) as refused:
            segments.replace_segment(
                ctx, pid, "beta", {"name": "Beta", "included": ["u1", "u3"]}, f"user:{editor.id}:Eddie Editor"
            )
        costs.append(cost)
        assert refused.value.message.count("'var_") == size // 10
    assert costs[0].statements == costs[1].statements, [c.statements for c in costs]


def test_the_guarantees_stay_in_a_large_project(storage: Storage) -> None:
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    pid = _fill(ctx, 300)
    # Aliases against the other variables, both ways.
    with pytest.raises(InvalidError, match="alias 'var_00200' of 'var_00005' is the name of another variable"):
        editing.update_details(ctx, pid, "var_00005", "me", aliases=["var_00200"], set_aliases=True)
    editing.update_details(ctx, pid, "var_00250", "me", aliases=["old_name"], set_aliases=True)
    with pytest.raises(InvalidError, match="already an alias of 'var_00250'"):
        editing.update_details(ctx, pid, "var_00005", "me", aliases=["old_name"], set_aliases=True)
    with pytest.raises(InvalidError, match="'old_name' is an alias of variable 'var_00250'"):
        lifecycle.rename_variable(ctx, pid, "var_00003", "old_name", "me")
    # Segment references of a variable.
    with pytest.raises(InvalidError, match="unknown segment"):
        editing.set_targeting(
            ctx,
            pid,
            "var_00005",
            {"labels": {}},
            [{"conditions": [{"kind": "in-segment", "segment": "nope"}], "rollout": {"labels": {}}}],
            "me",
        )
    # Segment writes: unknown references and cycles, delete refused while used (naming the users).
    segments.create_segment(ctx, pid, {"key": "outer", "name": "Outer", "rules": [_match("beta")]}, "me")
    with pytest.raises(segments.SegmentInvalidError, match="unknown segment"):
        segments.create_segment(ctx, pid, {"key": "broken", "name": "Broken", "rules": [_match("missing")]}, "me")
    with pytest.raises(segments.SegmentInvalidError, match="cycle: beta -> outer -> beta"):
        segments.replace_segment(ctx, pid, "beta", {"name": "Beta", "rules": [_match("outer")]}, "me")
    with pytest.raises(ConflictError, match=r"variable\(s\) var_00000, var_00010") as refused:
        segments.delete_segment(ctx, pid, "beta", "me")
    assert "segment(s) outer" in refused.value.message
    # Optimistic concurrency and the audit are unchanged.
    view = editing.create_version(ctx, pid, "var_00009", '{"n": 9}', "me")[1]
    with pytest.raises(PreconditionFailedError):
        editing.create_version(ctx, pid, "var_00009", '{"n": 10}', "me", if_match=view.revision - 1)
    with storage.read() as tx:
        entries = tx.list_audit(pid, entity_name="var_00009")
    assert [(e.action, e.actor) for e in entries] == [("create_version", "me")]


def _match(key: str) -> dict[str, Any]:
    return {"clauses": [{"attribute": "key", "op": "segmentMatch", "values": [key]}]}
