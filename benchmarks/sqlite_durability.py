"""What durable SQLite commits cost: write latency with ``synchronous=FULL`` (the default) against ``NORMAL``.

Run ``python benchmarks/sqlite_durability.py`` (``--quick`` for a smoke run, ``--record`` to rewrite its
section of ``BENCHMARKS.md``). ``--dir`` chooses where the database files go: it must be on the disk the
data directory lives on (a tmpfs makes fsync free and the comparison meaningless).

Two writes, each timed per call in both modes, on two database files in WAL mode side by side:

* ``service write``: ``editing.create_version`` with a label move, i.e. what ``POST
  /v1/variables/{name}/versions/`` does below HTTP (validate, new version, label history, audit, revision);
* ``bare commit``: one ``INSERT`` into ``audit_log`` in its own write transaction (the fsync cost alone).

Rounds alternate the order of the two modes so that a burst of load elsewhere hits both; reported are the
median p50/p99 over rounds, writes/s from the summed time, and FULL ÷ NORMAL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _report import BENCHMARKS_MD, REPO_ROOT, add_record_option, cpu_model, load_average, record_section

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))  # `python benchmarks/sqlite_durability.py` from a checkout without an install

MODES = ("NORMAL", "FULL")


def _filesystem(path: Path) -> str:
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def _writers(directory: Path, mode: str) -> dict[str, Callable[[int], None]]:
    import sqlalchemy as sa

    from setpoint._server.services import editing, keys
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.services.context import ServiceContext
    from setpoint._server.services.models import LabelTargetIn, VariableIn
    from setpoint._server.services.variables import create_variable
    from setpoint._server.storage import open_storage
    from setpoint._server.storage.schema import audit_log

    storage = open_storage(f"sqlite:///{directory / mode.lower()}.db", sqlite_synchronous=mode)
    storage.migrate()
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"))
    project = keys.ensure_project(ctx, "bench", "bench")
    labels = {"prod": LabelTargetIn(target_type="version", serialized_value='"v0"')}
    create_variable(ctx, project.id, VariableIn(name="flag", labels=labels, rollout={"labels": {"prod": 1.0}}), "b")

    def service_write(i: int) -> None:
        editing.create_version(ctx, project.id, "flag", f'"v{i}"', "bench", label="prod")

    def bare_commit(i: int) -> None:
        row = {
            "project_id": project.id,
            "at": dt.datetime.now(dt.UTC),
            "actor": "bench",
            "action": "bench",
            "entity_type": "bench",
            "entity_name": str(i),
        }
        with storage.engine.connect() as conn:
            conn.execution_options(setpoint_write=True)
            with conn.begin():
                conn.execute(sa.insert(audit_log), row)

    return {"service write": service_write, "bare commit": bare_commit}


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _explain(service_ms: float, bare_ms: float) -> str:
    service, bare = f"{service_ms * 1000:.1f}", f"{bare_ms * 1000:.1f}"
    return f"""FULL adds {service} ms to a service write's p50 here ({bare} ms to a bare commit: one fsync of the
WAL; the service write's own CPU work under the machine's load blurs the difference).
`synchronous=FULL` (the default since issue 17) fsyncs the write-ahead log at every commit, so a write that
the API acknowledged survives a power loss; `NORMAL` fsyncs only at checkpoints and survives a killed
process but can lose the last commits when the machine loses power. At a config store's write rate one
fsync per write is not a throughput concern; reads are unaffected."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=200, help="writes per mode, kind and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="30 writes, 2 rounds")
    parser.add_argument("--dir", type=Path, default=None, help="where the database files go (default: the repo)")
    add_record_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.writes, args.rounds = 30, 2
    parent = args.dir or REPO_ROOT
    directory = Path(tempfile.mkdtemp(prefix=".bench-durability-", dir=parent))
    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    try:
        writers = {mode: _writers(directory, mode) for mode in MODES}
        kinds = list(writers["FULL"])
        p50s: dict[tuple[str, str], list[float]] = {(k, m): [] for k in kinds for m in MODES}
        p99s: dict[tuple[str, str], list[float]] = {(k, m): [] for k in kinds for m in MODES}
        totals: dict[tuple[str, str], float] = {(k, m): 0.0 for k in kinds for m in MODES}
        counter = 0
        for round_no in range(args.rounds):
            order = MODES if round_no % 2 == 0 else MODES[::-1]
            for kind in kinds:
                for mode in order:
                    write = writers[mode][kind]
                    samples = []
                    for _ in range(args.writes):
                        counter += 1
                        t0 = time.perf_counter()
                        write(counter)
                        samples.append(time.perf_counter() - t0)
                    p50s[kind, mode].append(_percentile(samples, 0.5))
                    p99s[kind, mode].append(_percentile(samples, 0.99))
                    totals[kind, mode] += sum(samples)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    load_end = load_average()

    rows = []
    for kind in kinds:
        base = statistics.median(p50s[kind, "NORMAL"])
        for mode in MODES:
            p50 = statistics.median(p50s[kind, mode])
            p99 = statistics.median(p99s[kind, mode])
            per_s = args.writes * args.rounds / totals[kind, mode]
            rows.append(f"| {kind} | {mode} | {p50 * 1000:.2f} | {p99 * 1000:.2f} | {per_s:,.0f} | {p50 / base:.2f}x |")
    table = "\n".join(
        [
            "| write | synchronous | p50 ms | p99 ms | writes/s | p50 ÷ NORMAL p50 |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    added = {k: statistics.median(p50s[k, "FULL"]) - statistics.median(p50s[k, "NORMAL"]) for k in kinds}
    body = f"""Measured {started:%Y-%m-%d %H:%M} UTC with `python benchmarks/sqlite_durability.py`
({args.writes} writes per mode, kind and round, {args.rounds} rounds, modes alternating first; medians over rounds).

- Machine: {os.cpu_count()} CPUs, {cpu_model()}; CPython {platform.python_version()} ({sys.platform}); database files
  on {_filesystem(directory)} ({parent})
- Load average (1 min) at start / end: {load_start:.2f} / {load_end:.2f} (other work shares the machine)

{table}

{_explain(added["service write"], added["bare commit"])}
"""
    print(body)
    if args.record:
        record_section(Path(args.record), "## SQLite durability (benchmarks/sqlite_durability.py)", body)
        print(f"recorded in {args.record or BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
