"""Read models of usage: a variable's counts over time and its observed split, "last seen", and the stale rule."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from setpoint._server.services.context import ServiceContext
from setpoint._server.storage.records import Variable
from setpoint._server.storage.usage import DAY, HOUR, VariableUsage, day_start, hour_start

CODE_DEFAULT = "(code default)"
"""The series name of resolutions that served the code default."""
PROCESS_WINDOW = timedelta(hours=24)
"""A process counts as reading a variable when it reported it within this window."""


@dataclass(frozen=True)
class UsageSeries:
    """A variable's resolutions per label over ``[start, end)`` in hourly or daily steps."""

    variable: str
    start: datetime
    end: datetime
    step: str
    """``hour`` or ``day``."""
    buckets: list[datetime]
    labels: list[str]
    """Series names: labels in order of first appearance, `CODE_DEFAULT` last."""
    counts: dict[str, list[int]]
    """Per series name, one count per bucket."""
    totals: dict[str, int]
    reasons: dict[str, int]
    versions: dict[str, dict[int, int]] = field(default_factory=dict)
    """Per label, resolutions per version."""
    last_seen_at: datetime | None = None
    processes: int = 0

    @property
    def total(self) -> int:
        """Every resolution in the range."""
        return sum(self.totals.values())

    def split(self) -> dict[str, float]:
        """The observed share of each series (0..1)."""
        total = self.total
        return {name: count / total for name, count in self.totals.items()} if total else {}

    def as_json(self) -> dict[str, object]:
        """The API's JSON form."""
        return {
            "variable": self.variable,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "step": self.step,
            "buckets": [b.isoformat() for b in self.buckets],
            "series": [
                {"label": name, "counts": self.counts[name], "total": self.totals[name]} for name in self.labels
            ],
            "split": self.split(),
            "reasons": self.reasons,
            "versions": {label: {str(v): n for v, n in by.items()} for label, by in self.versions.items()},
            "total": self.total,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "processes": self.processes,
        }


def default_range(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last 7 days up to the end of the current hour."""
    end = hour_start(now or datetime.now(UTC)) + timedelta(hours=1)
    return end - timedelta(days=7), end


def usage_series(
    ctx: ServiceContext, project_id: int, variable: str, start: datetime, end: datetime, now: datetime | None = None
) -> UsageSeries:
    """Counts of ``variable`` per label from ``start`` to ``end``: hourly up to 3 days, else daily."""
    now = now or datetime.now(UTC)
    step = HOUR if end - start <= timedelta(days=3) else DAY
    first = hour_start(start) if step == HOUR else day_start(start)
    delta = timedelta(hours=1) if step == HOUR else timedelta(days=1)
    buckets: list[datetime] = []
    at = first
    while at < end and len(buckets) < 2000:
        buckets.append(at)
        at += delta
    index = {b: i for i, b in enumerate(buckets)}
    counts: dict[str, list[int]] = {}
    totals: dict[str, int] = defaultdict(int)
    reasons: dict[str, int] = defaultdict(int)
    versions: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for bucket in ctx.storage.usage.buckets(project_id, variable, first, end):
        key = bucket.bucket_start if step == HOUR or bucket.granularity == DAY else day_start(bucket.bucket_start)
        if step == HOUR and bucket.granularity == DAY:
            key = hour_start(bucket.bucket_start)
        position = index.get(key)
        if position is None:
            continue
        name = bucket.label or CODE_DEFAULT
        counts.setdefault(name, [0] * len(buckets))[position] += bucket.count
        totals[name] += bucket.count
        reasons[bucket.reason] += bucket.count
        if bucket.label is not None and bucket.version is not None:
            versions[bucket.label][bucket.version] += bucket.count
    labels = [n for n in counts if n != CODE_DEFAULT] + ([CODE_DEFAULT] if CODE_DEFAULT in counts else [])
    window = now - PROCESS_WINDOW
    seen = ctx.storage.usage.summaries(project_id, processes_since=window, variable=variable).get(variable)
    return UsageSeries(
        variable=variable,
        start=first,
        end=end,
        step=step,
        buckets=buckets,
        labels=labels,
        counts=counts,
        totals={n: totals[n] for n in labels},
        reasons=dict(reasons),
        versions={label: dict(by) for label, by in versions.items()},
        last_seen_at=seen.last_seen_at if seen else None,
        processes=seen.processes if seen else 0,
    )


def usage_overview(ctx: ServiceContext, project_id: int, now: datetime | None = None) -> dict[str, VariableUsage]:
    """Per variable name: when it was last evaluated and by how many processes in the last 24 hours."""
    now = now or datetime.now(UTC)
    return ctx.storage.usage.summaries(project_id, processes_since=now - PROCESS_WINDOW)


def stale_reason(variable: Variable, usage: VariableUsage | None, now: datetime, stale_days: int) -> str | None:
    """Why ``variable`` is stale, or None. Stale: not evaluated for ``stale_days`` (a variable younger than that
    is not), or one label served to everyone (no rules) with no change for ``stale_days`` (ready to hard-code)."""
    limit = timedelta(days=stale_days)
    last_seen = usage.last_seen_at if usage else None
    if last_seen is None and now - variable.created_at >= limit:
        return f"never evaluated by a reporting SDK in {stale_days} days"
    if last_seen is not None and now - last_seen >= limit:
        return f"not evaluated for {(now - last_seen).days} days"
    weights = variable.fields.rollout.get("labels") or {}
    served = [label for label, weight in weights.items() if weight > 0]
    if (
        len(served) == 1
        and abs(float(weights[served[0]]) - 1.0) < 1e-9
        and not variable.fields.overrides
        and now - variable.updated_at >= limit
    ):
        days = (now - variable.updated_at).days
        return f"serves {served[0]!r} to everyone, unchanged for {days} days: ready to hard-code"
    return None


@dataclass(frozen=True)
class StaleVariable:
    """A stale variable and why."""

    name: str
    reason: str
    last_seen_at: datetime | None


def stale_variables(
    ctx: ServiceContext, project_id: int, stale_days: int, now: datetime | None = None
) -> list[StaleVariable]:
    """Every stale variable of a project, by name."""
    status = list_status(ctx, project_id, stale_days, now, with_code=False)
    found: list[StaleVariable] = []
    for name, reason in status.stale.items():
        seen = status.usage.get(name)
        found.append(StaleVariable(name, reason, seen.last_seen_at if seen else None))
    return found


@dataclass(frozen=True)
class ListStatus:
    """Usage facts for the variables list."""

    usage: dict[str, VariableUsage]
    stale: dict[str, str]
    """Stale variable name -> why."""
    in_code: set[str] | None
    """Names some uploaded code defines (None: no code references uploaded, so nothing is flagged)."""


def list_status(
    ctx: ServiceContext, project_id: int, stale_days: int, now: datetime | None = None, *, with_code: bool = True
) -> ListStatus:
    """Last seen, stale flags and code presence (unless not ``with_code``) of every variable of a project."""
    from setpoint._server.services.usage.refs import defined_names

    now = now or datetime.now(UTC)
    overview = usage_overview(ctx, project_id, now)
    with ctx.storage.read() as tx:
        variables = tx.list_variables(project_id)
    stale = {}
    for variable in variables:
        reason = stale_reason(variable, overview.get(variable.name), now, stale_days)
        if reason is not None:
            stale[variable.name] = reason
    return ListStatus(overview, stale, defined_names(ctx, project_id) if with_code else None)
