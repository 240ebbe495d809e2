"""Scheduled changes: what running one costs beside making the same change directly (the runner claims the row,
runs the change in a savepoint and records the outcome in the same transaction), and what the runner's poll
costs when nothing is due while many changes are pending (the ``(state, due_at)`` index), on SQLite and
PostgreSQL (when reachable at ``SETPOINT_TEST_POSTGRES_URL``, in a throwaway database).

    python benchmarks/schedules.py [--changes 200] [--pending 10000] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _report import add_record_option, cpu_model, load_average, record_section

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))  # `python benchmarks/schedules.py` from a checkout without an install

T0 = datetime(2031, 1, 1, tzinfo=UTC)


@contextmanager
def _databases() -> Iterator[list[tuple[str, str]]]:
    import os

    import psycopg
    from psycopg import sql

    found: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        found.append(("SQLite", f"sqlite:///{tmp}/bench.db"))
        server = os.environ.get("SETPOINT_TEST_POSTGRES_URL", "postgresql://postgres@localhost:5432/test")
        name = f"setpoint_bench_{uuid.uuid4().hex[:8]}"
        try:
            with psycopg.connect(server, autocommit=True, connect_timeout=3) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            found.append(("PostgreSQL", f"{server.rpartition('/')[0]}/{name}"))
        except psycopg.Error:
            name = ""
        try:
            yield found
        finally:
            if name:
                with psycopg.connect(server, autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _measure(url: str, changes: int, pending: int) -> tuple[float, float, float]:
    from setpoint._server.services import editing, lifecycle
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.services.context import ServiceContext
    from setpoint._server.services.schedules import runner
    from setpoint._server.storage import open_storage
    from setpoint._server.storage import schedules as store

    storage = open_storage(url)
    storage.migrate()
    now = [T0]
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"), clock=lambda: now[0])
    try:
        with storage.write() as tx:
            project = tx.create_project("bench")
        lifecycle.create_variable(ctx, project.id, "v", "bench")
        editing.create_version(ctx, project.id, "v", '"a"', "bench", label="a")
        editing.create_version(ctx, project.id, "v", '"b"', "bench", label="b")
        direct: list[float] = []
        for i in range(changes):
            weights = {"a": round(1 - i / changes, 4), "b": round(i / changes, 4)}
            start = time.perf_counter()
            editing.set_targeting(ctx, project.id, "v", {"labels": weights}, [], "bench")
            direct.append(time.perf_counter() - start)
        with storage.write() as tx:
            for i in range(changes):
                weights = {"a": round(i / changes, 4), "b": round(1 - i / changes, 4)}
                store.add_schedule(tx, project.id, "v", "set_weights", {"weights": weights}, T0, "bench", T0)
            for _ in range(pending):  # far in the future: the poll must not scan them
                store.add_schedule(
                    tx, project.id, "v", "set_weights", {"weights": {}}, T0 + timedelta(days=30), "bench", T0
                )
        scheduled: list[float] = []
        while True:
            start = time.perf_counter()
            one = runner.run_one(ctx)
            if one is None:
                break
            assert one.state == "done", one.error
            scheduled.append(time.perf_counter() - start)
        polls: list[float] = []
        for _ in range(50):
            start = time.perf_counter()
            assert runner.run_due(ctx) == []
            polls.append(time.perf_counter() - start)
        assert len(scheduled) == changes
        return statistics.median(direct), statistics.median(scheduled), statistics.median(polls)
    finally:
        storage.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--pending", type=int, default=10_000)
    add_record_option(parser)
    args = parser.parse_args()
    load_before = load_average()
    rows = []
    with _databases() as databases:
        for label, url in databases:
            direct, scheduled, poll = _measure(url, args.changes, args.pending)
            rows.append(
                f"| {label} | {direct * 1000:.2f} ms | {scheduled * 1000:.2f} ms | {scheduled / direct:.2f}x | "
                f"{poll * 1000:.2f} ms |"
            )
    body = f"""Machine: {cpu_model()}, load average {load_before:.1f} -> {load_average():.1f} (shared with other work).
{args.changes} rollout-weight changes made directly, then the same number scheduled and run by `runner.run_one`
(medians), with {args.pending:,} other changes pending for later; then the runner's poll when nothing is due.

| database | change made directly | same change, scheduled and run | ratio | poll, nothing due |
|---|---|---|---|---|
{chr(10).join(rows)}

A scheduled change costs one claim (an indexed `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL), a savepoint,
the change itself and an update of the schedule, in the change's own transaction. The poll every second is one
indexed query, whatever the number of pending changes."""
    print(body)
    if args.record:
        record_section(Path(args.record), "## Scheduled changes (benchmarks/schedules.py)", body)


if __name__ == "__main__":
    main()
