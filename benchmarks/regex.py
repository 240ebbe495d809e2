"""Regex rules on RE2: the cost on ordinary input (before/after), hostile input in the SDK and the server.

Run ``python benchmarks/regex.py`` (``--quick`` for a short smoke run, ``--record`` to rewrite the
``## Regex rules`` section of ``BENCHMARKS.md``).

* **ordinary input, before vs after**: a variable with one override rule on ``email`` serving
  ``"enterprise"``, else a 50/50 rollout. Three rules: ``^[\\w.+-]+@(corp|example)\\.com$`` (anchored and
  deterministic) and ``@(corp|example)\\.com$`` (starts with a literal no repetition takes) take the core's
  fast path on Python's ``re``, which is provably linear for them; ``[\\w.+-]+@(corp|example)\\.com$``
  (unanchored, starts with a repetition) runs on RE2. Each config is compiled twice in this process: with the
  engine Setpoint used before (Python's ``re.search``) and with the current
  ``setpoint._core.operators.compile_regex``.
  Two input sets: 10,000 distinct e-mail addresses (every call a different string) and 16 distinct ones (the
  repeated values of a low-cardinality attribute). Half the calls match the rule. Latency loops as in
  ``benchmarks/resolve.py``: each call between two ``perf_counter_ns`` reads, the empty loop's median
  subtracted; the GC off; the two engines measured in interleaved rounds; median p50 over the rounds.
* **hostile input**: the rule ``(a+)+$`` against ``"a" * 10_000 + "!"``: the SDK's ``Variable.get`` (RE2),
  and Python's ``re`` on the same pattern at 16..24 characters to show why it was replaced (each extra
  character doubles its time; 10 kB would never finish).
* **server**: a ``setpoint serve`` process (SQLite); ``POST /v1/resolve/`` with that 10 kB hostile attribute,
  one at a time (p50), then ``/healthz`` latency (p50/p99/max over ``--health`` probes) while 8 threads keep
  sending such resolves.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _report import REPO_ROOT, add_record_option, cpu_model, load_average, record_section, serving

sys.path.insert(0, str(REPO_ROOT))

import setpoint
from setpoint._core import operators as ops
from setpoint._core.evaluator import CompiledConfig, compile_config
from setpoint._server.services import keys
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.storage import open_storage
from setpoint.config import VariablesConfig

EMAIL_RULE = r"^[\w.+-]+@(corp|example)\.com$"
UNANCHORED_RULE = r"@(corp|example)\.com$"
RE2_RULE = r"[\w.+-]+@(corp|example)\.com$"
HOSTILE = "(a+)+$"
HOSTILE_INPUT = "a" * 10_000 + "!"


def _config(pattern: str) -> dict[str, Any]:
    labels = {
        name: {"version": i + 1, "serialized_value": f'"{name}"'}
        for i, name in enumerate(("enterprise", "control", "treatment"))
    }
    rule = {"kind": "value-matches-regex", "attribute": "email", "pattern": pattern}
    return {
        "variables": {
            "plan": {
                "name": "plan",
                "labels": labels,
                "rollout": {"labels": {"control": 0.5, "treatment": 0.5}},
                "overrides": [{"conditions": [rule], "rollout": {"labels": {"enterprise": 1.0}}}],
            }
        }
    }


def _python_re(pattern: str) -> ops.Predicate:
    """The engine before: Python's ``re.search`` on the compiled pattern."""
    search = re.compile(pattern).search
    return lambda v: v.__class__ is str and search(v) is not None


@contextmanager
def _engine(compile_regex: Callable[[str], ops.Predicate]) -> Iterator[None]:
    saved = ops.compile_regex
    setattr(ops, "compile_regex", compile_regex)  # noqa: B010 - swapped for the "before" measurement only
    try:
        yield
    finally:
        setattr(ops, "compile_regex", saved)  # noqa: B010


def _compiled(engine: str) -> CompiledConfig:
    factory = _python_re if engine == "python re" else ops.compile_regex
    with _engine(factory):
        return compile_config(VariablesConfig.model_validate(_config(EMAIL_RULE)))


def _inputs(distinct: int, calls: int) -> list[tuple[str, dict[str, Any]]]:
    emails = [
        f"user.{i}@{'corp' if i % 2 == 0 else 'other'}.com"
        if distinct > 16
        else f"u{i}@{'corp' if i % 2 == 0 else 'x'}.com"
        for i in range(distinct)
    ]
    return [(f"user-{i % 10_000}", {"email": emails[i % distinct]}) for i in range(calls)]


def _p50(call: Callable[[str, dict[str, Any]], object], inputs: list[tuple[str, dict[str, Any]]]) -> float:
    """Median per-call latency in µs, the timer+loop overhead subtracted."""
    clock = time.perf_counter_ns
    empty: list[int] = []
    samples: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for _key, _attrs in inputs:
            t0 = clock()
            empty.append(clock() - t0)
        for key, attrs in inputs:
            t0 = clock()
            call(key, attrs)
            samples.append(clock() - t0)
    finally:
        gc.enable()
    overhead = statistics.median(empty)
    return (statistics.median(samples) - overhead) / 1000


def _sdk_call(variable: Any) -> Callable[[str, dict[str, Any]], object]:
    get = variable.get

    def call(key: str, attributes: dict[str, Any]) -> object:
        return get(key, attributes).value

    return call


def _measure(
    results: dict[tuple[str, str, str], list[float]],
    label: str,
    configs: dict[str, VariablesConfig],
    variable: Any,
    inputs: list[tuple[str, dict[str, Any]]],
) -> None:
    for engine, config in configs.items():
        core = compile_config(config).get("plan")
        assert core is not None
        results.setdefault((label, engine, "core"), []).append(_p50(core.evaluate, inputs))
        setpoint.configure(config=config, instrument=False)
        results.setdefault((label, engine, "sdk"), []).append(_p50(_sdk_call(variable), inputs))


def ordinary(variable: Any, calls: int, rounds: int) -> list[tuple[str, str, str, float]]:
    """(rule and input set, engine, system, p50 µs) for both engines, core and SDK."""
    results: dict[tuple[str, str, str], list[float]] = {}
    for pattern in (EMAIL_RULE, UNANCHORED_RULE, RE2_RULE):
        for distinct in (10_000, 16):
            inputs = _inputs(distinct, calls)
            configs: dict[str, VariablesConfig] = {}
            for engine in ("python re", "re2"):
                with _engine(_python_re if engine == "python re" else ops.compile_regex):
                    configs[engine] = VariablesConfig.model_validate(_config(pattern))
            label = f"`{pattern.replace('|', chr(92) + '|')}`, {distinct:,} distinct"  # escaped for a table
            for _ in range(rounds):
                _measure(results, label, configs, variable, inputs)
            _check_same_answers({e: compile_config(c) for e, c in configs.items()}, inputs)
    return [(*k, statistics.median(v)) for k, v in results.items()]


def _check_same_answers(compiled: dict[str, CompiledConfig], inputs: list[tuple[str, dict[str, Any]]]) -> None:
    before, after = compiled["python re"].get("plan"), compiled["re2"].get("plan")
    assert before is not None and after is not None
    for key, attrs in inputs[:2000]:
        assert before.evaluate(key, attrs).label == after.evaluate(key, attrs).label


def hostile_sdk(variable: Any, repeat: int) -> tuple[float, list[tuple[int, float]]]:
    """(ms per SDK get of the 10 kB hostile attribute with RE2, [(n, ms) of Python re at n characters])."""
    config = VariablesConfig.model_validate(_config(HOSTILE))
    setpoint.configure(config=config, instrument=False)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        assert variable.get("user-1", {"email": HOSTILE_INPUT}).value in ("control", "treatment")
        times.append(time.perf_counter() - t0)
    python = re.compile(HOSTILE)
    growth = []
    for n in (16, 18, 20, 22, 24):
        t0 = time.perf_counter()
        python.search("a" * n + "!")
        growth.append((n, (time.perf_counter() - t0) * 1000))
    return statistics.median(times) * 1000, growth


@contextmanager
def _server(data_dir: Path) -> Iterator[str]:
    with socket_port() as port:
        pass
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SETPOINT_ADMIN_PASSWORD": "bench"}
    cmd = [sys.executable, "-c", "from setpoint._cli.main import main; main()", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(data_dir), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with serving(proc, f"http://127.0.0.1:{port}") as url:
        yield url


@contextmanager
def socket_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def server_numbers(requests: int, probes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        storage = open_storage(f"sqlite:///{data_dir / 'setpoint.db'}")
        storage.migrate()
        ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"))
        token = keys.create_key(ctx, f"bench-{uuid.uuid4().hex[:6]}", frozenset({"read", "write"}), "bench").token
        storage.dispose()
        with _server(data_dir) as url:
            headers = {"Authorization": f"bearer {token}"}
            variable = _config(HOSTILE)["variables"]["plan"]
            body = {
                "name": "plan",
                "labels": {
                    k: {"target_type": "version", "serialized_value": v["serialized_value"]}
                    for k, v in variable["labels"].items()
                },
                "rollout": variable["rollout"],
                "overrides": variable["overrides"],
            }
            httpx.post(f"{url}/v1/variables/", json=body, headers=headers).raise_for_status()
            payload = {"targeting_key": "user-1", "attributes": {"email": HOSTILE_INPUT}, "variables": ["plan"]}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                for _ in range(5):
                    client.post("/v1/resolve/", json=payload).raise_for_status()
                single = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    client.post("/v1/resolve/", json=payload).raise_for_status()
                    single.append((time.perf_counter() - t0) * 1000)
            stop = threading.Event()
            sent = [0]

            def hammer() -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                    while not stop.is_set():
                        client.post("/v1/resolve/", json=payload).raise_for_status()
                        sent[0] += 1

            workers = [threading.Thread(target=hammer) for _ in range(8)]
            for worker in workers:
                worker.start()
            time.sleep(1.0)
            health = []
            started = time.perf_counter()
            with httpx.Client(base_url=url, timeout=60) as probe:
                for _ in range(probes):
                    t0 = time.perf_counter()
                    assert probe.get("/healthz").status_code == 200
                    health.append((time.perf_counter() - t0) * 1000)
                    time.sleep(0.02)
            elapsed = time.perf_counter() - started
            before = sent[0]
            stop.set()
            for worker in workers:
                worker.join()
            return {
                "resolve_p50": statistics.median(single),
                "health_p50": statistics.median(health),
                "health_p99": _percentile(health, 99),
                "health_max": max(health),
                "resolves_per_s": before / (elapsed + 1.0),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    add_record_option(parser)
    args = parser.parse_args()
    calls, rounds, requests, probes = (20_000, 2, 20, 50) if args.quick else (100_000, 5, 100, 300)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = load_average()
    variable = setpoint.var(name="plan", type=str, default="free")
    rows = ordinary(variable, calls, rounds)
    sdk_ms, growth = hostile_sdk(variable, 20)
    server = server_numbers(requests, probes)
    load_end = load_average()

    lines = [
        f"Measured {started} with `python benchmarks/regex.py{' --quick' if args.quick else ''}` "
        f"({calls:,} calls per latency loop, {rounds} interleaved rounds, median p50).",
        "",
        f"- Machine: {os.cpu_count()} CPUs, {cpu_model()}; Python {platform.python_version()}; "
        f"load average {load:.2f} at the start, {load_end:.2f} at the end (shared with other engineers' tests)",
        "",
        "Rule + rollout on ordinary input (an `email` rule, half the calls match). The first two rules take the",
        "provably linear fast path on Python's `re`; the third (unanchored, starting with a repetition) runs on RE2:",
        "",
        "| rule, input | system | Python re p50 µs | after p50 µs | after / before |",
        "|---|---|---:|---:|---:|",
    ]
    by_key = {(i, e, s): v for i, e, s, v in rows}
    for input_set in dict.fromkeys(i for i, _, _, _ in rows):
        for system in ("core", "sdk"):
            before, after = by_key[(input_set, "python re", system)], by_key[(input_set, "re2", system)]
            lines.append(f"| {input_set} | {system} | {before:.2f} | {after:.2f} | {after / before:.2f} |")
    lines += [
        "",
        f"Hostile input (`{HOSTILE}` against `'a' * 10_000 + '!'`):",
        "",
        f"- SDK `Variable.get` with RE2: {sdk_ms:.3f} ms per call",
        "- Python `re` on the same pattern (the engine before), by attribute length: "
        + ", ".join(f"{n} chars {ms:,.1f} ms" for n, ms in growth)
        + " (doubling per character; 10 kB never finishes)",
        f"- `POST /v1/resolve/` (SQLite server, one at a time): p50 {server['resolve_p50']:.2f} ms",
        f"- `/healthz` while 8 threads send such resolves ({server['resolves_per_s']:,.0f} resolves/s): "
        f"p50 {server['health_p50']:.2f} ms, p99 {server['health_p99']:.2f} ms, max {server['health_max']:.2f} ms",
    ]
    text = "\n".join(lines)
    print(text)
    if args.record:
        record_section(Path(args.record), "## Regex rules (benchmarks/regex.py)", text)


if __name__ == "__main__":
    main()
