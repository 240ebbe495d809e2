"""Server-side evaluation after a change: what the first OFREP / ``/v1/resolve/`` call after a write pays to
compile the project's config, by project size.

Run ``python benchmarks/server_eval.py`` (``--sizes 10,1000,10000``, ``--rounds 30``, ``--record`` rewrites the
``## Server-side evaluation after a write (benchmarks/server_eval.py)`` section of ``BENCHMARKS.md``).

For each size (variables of ~1 KB each, every tenth one targeting segment ``beta``; SQLite):

- **compile** (in this process, on the server's own `SnapshotCache`): the full ``compile_config`` of the
  snapshot's config, which the server did on the first evaluation after every change before, beside
  `Snapshot.compiled` after one variable changed (what it does now: ``CompiledConfig.updated``) and after the
  segment changed (every variable naming a segment compiled again). Medians of ``--rounds``.
- **write -> OFREP** (a ``setpoint serve`` subprocess): a write (``POST /v1/variables/<name>/versions/``), then
  the time of the first ``POST /ofrep/v1/evaluate/flags/<name>`` after it (which applies the change to the
  snapshot and compiles), p50/p99; and an evaluation with no change before it, for reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
from _report import add_record_option, cpu_model, load_average, record_section, serving

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from setpoint._core.evaluator import compile_config  # noqa: E402
from setpoint._server.services import keys  # noqa: E402
from setpoint._server.services.changes import ChangeSink  # noqa: E402
from setpoint._server.services.context import ServiceContext  # noqa: E402
from setpoint._server.snapshot import SnapshotCache  # noqa: E402
from setpoint._server.storage import open_storage  # noqa: E402
from tests.server.scale_support import fill_project  # noqa: E402
from tests.server.support import CLI, free_port, subprocess_env  # noqa: E402

SECTION_TITLE = "## Server-side evaluation after a write (benchmarks/server_eval.py)"
VALUE_SIZE = 900
CONTEXT = {"context": {"targetingKey": "user-1", "plan": "pro"}}


def _ms(seconds: float) -> float:
    return seconds * 1000


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_compile(database_url: str, project_id: int, size: int, rounds: int) -> dict[str, float]:
    """Full compile vs the per-change compile, on the server's snapshot cache."""
    storage = open_storage(database_url)
    try:
        cache = SnapshotCache(storage)
        snapshot = cache.get(project_id)
        snapshot.compiled()
        full = [_timed(lambda: compile_config(snapshot.config)) for _ in range(min(rounds, 5))]
        one: list[float] = []
        segment: list[float] = []
        for n in range(rounds):
            cache.mark(project_id, "variable", f"var_{(n * 7) % size:05d}")
            changed = cache.get(project_id)
            one.append(_timed(changed.compiled))
            assert changed.compiled().recompiled == 1
            cache.mark(project_id, "segment", "beta")
            changed = cache.get(project_id)
            segment.append(_timed(changed.compiled))
        return {
            "full": _ms(statistics.median(full)),
            "one": _ms(statistics.median(one)),
            "segment": _ms(statistics.median(segment)),
        }
    finally:
        storage.dispose()


def bench_http(data_dir: Path, token: str, size: int, rounds: int) -> dict[str, float]:
    """Write, then time the first OFREP evaluation after it; and an evaluation with nothing changed."""
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"],
        env=subprocess_env(SETPOINT_ADMIN_PASSWORD="bench-password"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with serving(proc, f"http://127.0.0.1:{port}") as url:
        headers = {"Authorization": f"bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:

            def evaluate(name: str) -> None:
                response = client.post(f"/ofrep/v1/evaluate/flags/{name}", json=CONTEXT)
                assert response.status_code == 200, response.text

            evaluate("var_00001")  # the full load and compile
            after_write: list[float] = []
            unchanged: list[float] = []
            for n in range(rounds):
                name = f"var_{(n * 7) % size:05d}"
                client.post(f"/v1/variables/{name}/versions/", json={"value": {"n": n}}).raise_for_status()
                after_write.append(_timed(partial(evaluate, name)))
                unchanged.append(_timed(partial(evaluate, name)))
    return {
        "write_p50": _ms(pct(after_write, 0.5)),
        "write_p99": _ms(pct(after_write, 0.99)),
        "unchanged_p50": _ms(pct(unchanged, 0.5)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--rounds", type=int, default=30)
    add_record_option(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = load_average()
    rows: list[str] = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            database_url = f"sqlite:///{data_dir / 'setpoint.db'}"
            storage = open_storage(database_url)
            storage.migrate()
            ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"))
            created = keys.create_key(ctx, f"bench-{size}", frozenset({"read", "write"}), "bench")
            fill_project(storage, created.project.id, size, value_size=VALUE_SIZE)
            storage.dispose()
            compiled = bench_compile(database_url, created.project.id, size, args.rounds)
            http = bench_http(data_dir, created.token, size, args.rounds)
        row = (
            f"| {size:,} | {compiled['full']:.1f} | {compiled['one']:.2f} | {compiled['segment']:.1f} "
            f"| {http['write_p50']:.1f} / {http['write_p99']:.1f} | {http['unchanged_p50']:.1f} |"
        )
        print(row, flush=True)
        rows.append(row)
    load_end = load_average()
    body = "\n".join(
        [
            f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; SQLite; load "
            f"average {load_start:.1f} at start, {load_end:.1f} at end (the machine is shared: compare rows of one "
            "run). Compile times are medians; the HTTP columns are one client on the same machine.",
            "",
            "| variables | full compile (ms, before: every first evaluation after a change) | after one variable "
            "changed (ms) | after a segment changed (ms) | write -> first OFREP evaluation p50 / p99 (ms) "
            "| OFREP evaluation, no change (ms) |",
            "|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(body)
    if args.record:
        record_section(Path(args.record), SECTION_TITLE, body)


if __name__ == "__main__":
    main()
