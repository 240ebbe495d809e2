"""Usage storage on SQLite and PostgreSQL: batches add up, rollup folds hours into days exactly once, retention
deletes, the stale rule, and code references replace per repository."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.usage import report
from setpoint._server.services.usage.rollup import RollupJob
from setpoint._server.settings import Settings
from setpoint._server.storage import Storage, open_storage, sqlite_url
from setpoint._server.storage.records import Variable, VariableFields
from setpoint._server.storage.usage import CountRow, VariableUsage

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_database")
    store = open_storage(url)
    store.migrate()
    try:
        yield store
    finally:
        store.dispose()


def _project(storage: Storage, name: str = "shop") -> int:
    with storage.write() as tx:
        return tx.create_project(name).id


def test_batches_add_up_per_hour_label_version_and_reason(storage: Storage) -> None:
    project = _project(storage)
    usage = storage.usage
    rows = [CountRow("flag", "a", 1, "resolved", 5), CountRow("flag", None, None, "code_default", 2)]
    usage.record(project, rows, instance_id="i1", sdk="setpoint-python/1", at=NOW)
    usage.record(project, rows, instance_id="i2", sdk="setpoint-python/1", at=NOW + timedelta(minutes=10))
    usage.record(
        project, [CountRow("flag", "a", 1, "resolved", 1)], instance_id="i1", sdk="s", at=NOW + timedelta(hours=1)
    )
    buckets = usage.buckets(project, "flag", NOW - timedelta(days=1), NOW + timedelta(days=1))
    by_key = {(b.bucket_start, b.label, b.version, b.reason): b.count for b in buckets}
    hour = NOW.replace(minute=0)
    assert by_key == {
        (hour, "a", 1, "resolved"): 10,
        (hour, None, None, "code_default"): 4,
        (hour + timedelta(hours=1), "a", 1, "resolved"): 1,
    }
    summary = usage.summaries(project, processes_since=NOW)
    assert summary["flag"] == VariableUsage(NOW + timedelta(hours=1), 2)
    usage.record(project, [CountRow("second", "a", 1, "resolved", 1)], instance_id="i3", sdk="s", at=NOW)
    assert set(usage.summaries(project, processes_since=NOW)) == {"flag", "second"}
    assert usage.summaries(project, processes_since=NOW, variable="flag") == {"flag": summary["flag"]}
    assert usage.summaries(project, processes_since=NOW, variable="missing") == {}
    other = _project(storage, "other")
    assert usage.buckets(other, "flag", NOW - timedelta(days=1), NOW + timedelta(days=1)) == []
    assert usage.summaries(other, processes_since=NOW) == {}


def test_rollup_folds_old_hours_into_days_once_and_expires(storage: Storage) -> None:
    project = _project(storage)
    usage = storage.usage
    old = NOW - timedelta(days=40)
    for hour in range(5):
        usage.record(
            project, [CountRow("flag", "a", 1, "resolved", 3)], instance_id="i", sdk="s", at=old + timedelta(hours=hour)
        )
    usage.record(project, [CountRow("flag", "a", 1, "resolved", 7)], instance_id="i", sdk="s", at=NOW)
    usage.record(
        project, [CountRow("ancient", "a", 1, "resolved", 1)], instance_id="j", sdk="s", at=NOW - timedelta(days=500)
    )
    folded, deleted = usage.rollup(now=NOW, hourly_days=30, retention_days=400)
    assert folded == 6  # five old hours of flag + the ancient hour (folded first, then expired)
    assert deleted == 1
    buckets = usage.buckets(project, "flag", NOW - timedelta(days=60), NOW + timedelta(days=1))
    assert [(b.granularity, b.count) for b in buckets] == [("day", 15), ("hour", 7)]
    assert usage.rollup(now=NOW, hourly_days=30, retention_days=400) == (0, 0)
    assert [b.count for b in usage.buckets(project, "flag", NOW - timedelta(days=60), NOW + timedelta(days=1))] == [
        15,
        7,
    ]
    assert "ancient" not in usage.summaries(project, processes_since=NOW - timedelta(days=1000))


def test_the_rollup_job_uses_the_configured_windows(storage: Storage) -> None:
    project = _project(storage)
    storage.usage.record(
        project, [CountRow("flag", "a", 1, "resolved", 4)], instance_id="i", sdk="s", at=NOW - timedelta(days=10)
    )
    keep_hours = RollupJob(storage, Settings(usage_hourly_days=30, usage_retention_days=400))
    assert keep_hours.run_once(NOW) == (0, 0)
    short = RollupJob(storage, Settings(usage_hourly_days=7, usage_retention_days=9))
    assert short.run_once(NOW) == (1, 1)  # folded into its day, then past retention
    assert storage.usage.buckets(project, "flag", NOW - timedelta(days=60), NOW) == []


def test_series_buckets_hourly_or_daily_with_split(storage: Storage) -> None:
    project = _project(storage)
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="t"))
    storage.usage.record(
        project,
        [CountRow("flag", "a", 1, "resolved", 30), CountRow("flag", "b", 2, "resolved", 10)],
        instance_id="i",
        sdk="s",
        at=NOW - timedelta(hours=2),
    )
    storage.usage.record(project, [CountRow("flag", None, None, "code_default", 60)], instance_id="i", sdk="s", at=NOW)
    end = NOW.replace(minute=0) + timedelta(hours=1)
    hourly = report.usage_series(ctx, project, "flag", end - timedelta(hours=24), end, NOW)
    assert hourly.step == "hour" and len(hourly.buckets) == 24
    assert hourly.labels == ["a", "b", "(code default)"]
    assert hourly.counts["a"][-3] == 30 and hourly.counts["(code default)"][-1] == 60
    assert hourly.split() == {"a": 0.3, "b": 0.1, "(code default)": 0.6}
    daily = report.usage_series(ctx, project, "flag", end - timedelta(days=7), end, NOW)
    assert daily.step == "day" and sum(daily.counts["a"]) == 30 and daily.total == 100


def _variable(created: datetime, updated: datetime, rollout: dict[str, float], overrides: bool = False) -> Variable:
    fields = VariableFields(
        rollout={"labels": rollout}, overrides=[{"conditions": [], "rollout": {}}] if overrides else []
    )
    return Variable(1, 1, "v", fields, 1, created, updated)


def test_stale_rule() -> None:
    recent = NOW - timedelta(days=2)
    long_ago = NOW - timedelta(days=90)
    seen = VariableUsage(recent, 3)
    assert report.stale_reason(_variable(recent, recent, {}), None, NOW, 30) is None  # new, not yet used
    assert "never evaluated" in (report.stale_reason(_variable(long_ago, long_ago, {}), None, NOW, 30) or "")
    not_lately = VariableUsage(NOW - timedelta(days=31), 1)
    assert "not evaluated for 31 days" in (
        report.stale_reason(_variable(long_ago, long_ago, {}), not_lately, NOW, 30) or ""
    )
    hard_code = report.stale_reason(_variable(long_ago, long_ago, {"on": 1.0}), seen, NOW, 30)
    assert hard_code is not None and "ready to hard-code" in hard_code
    assert report.stale_reason(_variable(long_ago, recent, {"on": 1.0}), seen, NOW, 30) is None  # changed lately
    assert report.stale_reason(_variable(long_ago, long_ago, {"on": 1.0}, overrides=True), seen, NOW, 30) is None
    assert report.stale_reason(_variable(long_ago, long_ago, {"on": 0.5, "off": 0.5}), seen, NOW, 30) is None
    assert report.stale_reason(_variable(long_ago, long_ago, {"on": 1.0}), seen, NOW, 100) is None


def test_stale_variables_and_the_list_status_agree(storage: Storage) -> None:
    project = _project(storage)
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="t"))
    with storage.write() as tx:
        for name, rollout in (("forgotten", {}), ("in_use", {"a": 0.5}), ("settled", {"a": 1.0})):
            tx.insert_variable(project, name, VariableFields(rollout={"labels": rollout}))
    later = datetime.now(UTC) + timedelta(days=40)
    rows = [CountRow(name, "a", 1, "resolved", 1) for name in ("in_use", "settled")]
    storage.usage.record(project, rows, instance_id="i", sdk="s", at=later - timedelta(hours=1))
    storage.usage.replace_code_refs(
        project, "api", [("in_use", "a.py", 1, "setpoint.var")], commit_sha=None, branch=None, at=later
    )
    stale = report.stale_variables(ctx, project, 30, later)
    assert [(s.name, s.last_seen_at) for s in stale] == [
        ("forgotten", None),
        ("settled", later - timedelta(hours=1)),
    ]
    assert "never evaluated" in stale[0].reason and "ready to hard-code" in stale[1].reason
    status = report.list_status(ctx, project, 30, later)
    assert status.stale == {s.name: s.reason for s in stale}
    assert status.in_code == {"in_use"}
    assert status.usage["settled"].last_seen_at == stale[1].last_seen_at


def test_code_refs_replace_per_repository(storage: Storage) -> None:
    project = _project(storage)
    usage = storage.usage
    usage.replace_code_refs(
        project, "api", [("flag", "a.py", 3, "setpoint.var")], commit_sha="c1", branch="main", at=NOW
    )
    usage.replace_code_refs(project, "worker", [(None, "w.py", 9, "logfire.var")], commit_sha=None, branch=None, at=NOW)
    usage.replace_code_refs(
        project,
        "api",
        [("flag", "b.py", 4, "setpoint.var"), ("other", "b.py", 8, "setpoint.template_var")],
        commit_sha="c2",
        branch="main",
        at=NOW,
    )
    refs = usage.code_refs(project)
    assert [(r.repository, r.variable, r.path, r.line, r.commit_sha) for r in refs] == [
        ("api", "flag", "b.py", 4, "c2"),
        ("api", "other", "b.py", 8, "c2"),
        ("worker", None, "w.py", 9, None),
    ]
    assert [r.path for r in usage.code_refs(project, "flag")] == ["b.py"]
    assert usage.code_refs(_project(storage, "elsewhere")) == []
