"""Usage reporting benchmark: what counting costs ``Variable.get()``, and how fast the server ingests batches.

Run ``python benchmarks/usage.py`` (``--quick`` for a smoke run, ``--record`` to write BENCHMARKS.md).

1. Resolution cost. Counting is always on in the SDK (reporting only decides whether counts are sent), so "without
   usage reporting" is the SDK before counting existed: ``--baseline REF`` (default: the parent of the commit that
   added the counters) is checked out into a temporary git worktree, and child processes of the baseline and of
   this checkout run the same loops, alternating, ``--runs`` times each. Each child resolves the two workloads of
   ``benchmarks/resolve.py`` (``static`` and ``rule+rollout`` over 10,000 keys) through the public API with a
   ``LocalProvider`` and reports the median CPU time per call over 20 chunks (``time.thread_time_ns``, garbage
   collector off). The table shows the median over runs and the ratio.
2. Ingest. A real ``setpoint serve`` (SQLite, in a temporary directory) receives ``POST /v1/usage/`` batches of
   ``--rows`` rows from 4 client threads for ``--seconds`` seconds: batches/s and rows/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _report import REPO_ROOT, add_record_option, cpu_model, load_average, record_section

CHILD = r"""
import gc, json, sys, time
import setpoint
from setpoint.config import VariablesConfig

config = VariablesConfig.model_validate({"variables": {
    "static_flag": {"name": "static_flag", "labels": {"on": {"version": 1, "serialized_value": "\"blue\""}},
                    "rollout": {"labels": {"on": 1.0}}, "overrides": []},
    "rule_flag": {"name": "rule_flag",
        "labels": {"control": {"version": 1, "serialized_value": "\"control\""},
                   "treatment": {"version": 2, "serialized_value": "\"treatment\""},
                   "enterprise": {"version": 3, "serialized_value": "\"enterprise\""}},
        "rollout": {"labels": {"control": 0.5, "treatment": 0.5}},
        "overrides": [{"conditions": [{"kind": "value-equals", "attribute": "plan", "value": "enterprise"},
                                      {"kind": "value-is-in", "attribute": "country", "values": ["US", "UK"]}],
                       "rollout": {"labels": {"enterprise": 1.0}}}]}}})
setpoint.configure(provider=setpoint.LocalProvider(config))
static = setpoint.var(name="static_flag", type=str, default="x")
rule = setpoint.var(name="rule_flag", type=str, default="x")
plans, countries = ("enterprise", "free", "enterprise", "pro"), ("US", "UK", "UK", "DE")
inputs = [(f"user-{i}", {"plan": plans[i % 4], "country": countries[i % 4]}) for i in range(10_000)]
calls = int(sys.argv[1])
chunk = max(1, calls // 20)

def timed(loop):
    loop(chunk)
    samples = []
    gc.collect(); gc.disable()
    for _ in range(20):
        start = time.thread_time_ns(); loop(chunk); samples.append((time.thread_time_ns() - start) / chunk)
    gc.enable()
    samples.sort()
    return samples[len(samples) // 2]

def static_loop(n, get=static.get):
    for _ in range(n):
        get()

def rule_loop(n, get=rule.get, inputs=inputs):
    i = 0
    for _ in range(n):
        key, attributes = inputs[i]
        get(key, attributes)
        i = (i + 1) % 10_000

print(json.dumps({"static": timed(static_loop), "rule+rollout": timed(rule_loop)}))
"""


def _default_baseline() -> str:
    found = subprocess.run(
        ["git", "log", "--format=%H", "-n1", "--grep=^Usage: SDK evaluation counters"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found:
        raise SystemExit("cannot find the commit that added usage counting; pass --baseline REF")
    return f"{found}^"


def _child(tree: Path, calls: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(calls)],
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def resolution_cost(baseline: str, runs: int, calls: int) -> list[str]:
    """Lines of the resolution table: baseline vs this checkout."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), baseline], cwd=REPO_ROOT, check=True)
        try:
            before: dict[str, list[float]] = {"static": [], "rule+rollout": []}
            after: dict[str, list[float]] = {"static": [], "rule+rollout": []}
            for run in range(runs):
                for name, target in (("baseline", before), ("current", after))[:: 1 if run % 2 == 0 else -1]:
                    result = _child(tree if name == "baseline" else REPO_ROOT, calls)
                    for case, ns in result.items():
                        target[case].append(ns)
                print(f"run {run + 1}/{runs} done", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT, check=False)
    lines = [
        "| workload | without counting (ns/call) | with counting (ns/call) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for case in ("static", "rule+rollout"):
        b, a = statistics.median(before[case]), statistics.median(after[case])
        lines.append(f"| {case} | {b:.0f} | {a:.0f} | {a / b:.3f} |")
    return lines


def ingest_rate(rows: int, seconds: float) -> list[str]:
    """Lines of the ingest result against a real server."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.remote.support import ServerProc

    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProc(data_dir=Path(tmp) / "data")
        server.start(timeout=120)
        try:
            key = server.create_key("bench", "read")
            batches = [0]
            errors = [0]
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def post() -> None:
                instance = uuid.uuid4().hex
                body: dict[str, Any] = {
                    "sdk": "bench/1",
                    "instance_id": instance,
                    "counts": [
                        {"variable": f"v{i}", "label": "a", "version": 1, "reason": "resolved", "count": 3}
                        for i in range(rows)
                    ],
                }
                with httpx.Client(base_url=server.url, headers={"Authorization": f"bearer {key}"}, timeout=30) as c:
                    while time.monotonic() < deadline:
                        ok = c.post("/v1/usage/", json=body).status_code == 202
                        with lock:
                            batches[0] += ok
                            errors[0] += not ok

            threads = [threading.Thread(target=post) for _ in range(4)]
            start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
        finally:
            server.stop()
    rate = batches[0] / elapsed
    return [
        f"- `POST /v1/usage/` on SQLite, 4 concurrent clients, {rows} rows per batch: **{rate:.0f} batches/s** "
        f"({rate * rows:,.0f} rows/s), {errors[0]} errors over {elapsed:.0f} s."
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and calls (noisy)")
    parser.add_argument("--baseline", default=None, help="git ref of the SDK without counting")
    parser.add_argument("--runs", type=int, default=None, help="child runs per tree (default 7)")
    parser.add_argument("--rows", type=int, default=100, help="rows per ingested batch")
    parser.add_argument("--seconds", type=float, default=None, help="ingest duration (default 20)")
    add_record_option(parser)
    args = parser.parse_args(argv)
    runs = args.runs or (2 if args.quick else 7)
    calls = 40_000 if args.quick else 400_000
    load_before = load_average()
    resolve_lines = resolution_cost(args.baseline or _default_baseline(), runs, calls)
    ingest_lines = ingest_rate(args.rows, args.seconds or (5 if args.quick else 20))
    body = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/usage.py{' --quick' if args.quick else ''}`"
            f" on {cpu_model()} (load average {load_before:.1f} before, {load_average():.1f} after). "
            "Counting is always on; the baseline is the SDK before it existed, run side by side "
            f"({runs} alternating child runs each, median CPU time per call).",
            "",
            *resolve_lines,
            "",
            *ingest_lines,
        ]
    )
    print(body)
    if args.record:
        record_section(Path(args.record), "## Usage reporting", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
