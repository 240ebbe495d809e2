"""Resolution benchmark: Setpoint versus LaunchDarkly's and GrowthBook's Python SDKs, side by side.

Run ``python benchmarks/resolve.py`` (or ``--quick`` for a short smoke run). See ``benchmarks/README.md``.

Two workloads, identical for every system:

* ``static``: one variable/flag that serves the same value to everyone.
* ``rule+rollout``: one override rule with two conditions (``plan == "enterprise"`` AND ``country in
  ["US", "UK"]``) serving ``"enterprise"``, else a 50/50 percentage rollout between ``"control"`` and
  ``"treatment"``. The calls cycle through 10,000 distinct targeting keys; exactly half of the calls match the
  rule (``i % 4 in (0, 2)``), the other half fall through to the rollout (one quarter fails the first
  condition, one quarter the second).

Systems: Setpoint's SDK through its public API (``setpoint.configure`` / ``setpoint.var`` / ``Variable.get``),
Setpoint's bare evaluation core (``compile_config(cfg).get(name).evaluate(key, attrs)``, a reference line),
LaunchDarkly's server SDK (``LDClient.variation``) evaluating locally from a file data source (no network, no
events), and GrowthBook's SDK (``set_attributes`` + ``get_feature_value``) with the features given inline.
Setpoint's SDK is measured again after an OpenTelemetry SDK ``TracerProvider`` (with a span processor that
exports nothing) is installed globally.

Method (see also ``benchmarks/README.md``): every call's inputs (Setpoint attribute dicts, LaunchDarkly
``Context`` objects, GrowthBook attribute dicts) are built before timing. For each (system, workload) the
script warms up over all keys, then runs ``--rounds`` rounds, each of

* a throughput loop: ``--calls`` calls back to back, in 20 chunks each timed as a whole in the thread's CPU
  time (``time.thread_time_ns``) -> calls per CPU-second of the median chunk. On a shared 2-CPU machine a
  wall-clock figure for a whole loop mostly measures preemption by other processes; CPU time does not;
* a latency loop: ``--calls`` calls, each one between two ``time.perf_counter_ns()`` reads -> p50/p99. The
  same loop with an empty body is measured first; its median (the cost of the timer reads and the loop) is
  subtracted from every sample.

The statement under test is compiled into the loop body (like ``timeit``), so no wrapper function is timed.
The garbage collector is disabled during timed loops (after a ``gc.collect()``). Each reported number is the
median over the rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import REPO_ROOT, add_record_option, cpu_model, record_section

N_KEYS = 10_000
STATIC = "static_flag"
RULE = "rule_flag"
DEFAULT = "code-default"
WORKLOADS = ("static", "rule+rollout")
TARGET_P50_US = {"static": 1.0, "rule+rollout": 3.0}
THROUGHPUT_CHUNKS = 20
"""The throughput loop runs in this many chunks, each timed in thread CPU time; calls/s is the median chunk's."""
SECTION_TITLE = "## Resolution (benchmarks/resolve.py)"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))  # `python benchmarks/resolve.py` from a checkout without `pip install -e .`


# --------------------------------------------------------------------------------------------------------
# The workload: 10,000 keys, half matching the rule
# --------------------------------------------------------------------------------------------------------


def make_population() -> list[tuple[str, dict[str, str]]]:
    """(targeting key, attributes) for every key: i % 4 == 0/2 match the rule, 1 fails `plan`, 3 fails `country`."""
    population = []
    for i in range(N_KEYS):
        plan, country = (("enterprise", "US"), ("free", "US"), ("enterprise", "UK"), ("enterprise", "DE"))[i % 4]
        population.append((f"user-{i:05d}", {"plan": plan, "country": country}))
    return population


def expected_rule_match(attributes: dict[str, str]) -> bool:
    return attributes["plan"] == "enterprise" and attributes["country"] in ("US", "UK")


@dataclass
class Case:
    """One (system, workload): a statement timed in a loop over ``(k, a)`` pairs, and a checker."""

    system: str
    workload: str
    tracer: str
    stmt: str
    """Python statement(s) on one line, using ``k`` and ``a`` (this case's per-key inputs) and ``namespace``."""
    namespace: dict[str, Any]
    inputs: list[tuple[Any, Any]]
    """Per-key inputs, one pair per key of the population, in population order."""
    serve: Callable[[Any, Any], Any]
    """Resolve once (untimed) and return the served value, to check that the system really evaluates."""


@dataclass
class Result:
    case: Case
    calls_per_s: float
    p50_us: float
    p99_us: float
    split: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------
# Setpoint
# --------------------------------------------------------------------------------------------------------


def setpoint_config() -> Any:
    from setpoint.config import (
        LabeledValue,
        Rollout,
        RolloutOverride,
        ValueEquals,
        ValueIsIn,
        VariableConfig,
        VariablesConfig,
    )

    return VariablesConfig(
        variables={
            STATIC: VariableConfig(
                name=STATIC,
                labels={"on": LabeledValue(version=1, serialized_value='"blue"')},
                rollout=Rollout(labels={"on": 1.0}),
            ),
            RULE: VariableConfig(
                name=RULE,
                labels={
                    "control": LabeledValue(version=1, serialized_value='"control"'),
                    "treatment": LabeledValue(version=2, serialized_value='"treatment"'),
                    "enterprise": LabeledValue(version=3, serialized_value='"enterprise"'),
                },
                rollout=Rollout(labels={"control": 0.5, "treatment": 0.5}),
                overrides=[
                    RolloutOverride(
                        conditions=[
                            ValueEquals(attribute="plan", value="enterprise"),
                            ValueIsIn(attribute="country", values=["US", "UK"]),
                        ],
                        rollout=Rollout(labels={"enterprise": 1.0}),
                    )
                ],
            ),
        }
    )


def setpoint_core_cases(population: list[tuple[str, dict[str, str]]]) -> list[Case]:
    from setpoint._core.evaluator import compile_config

    compiled = compile_config(setpoint_config())
    cases = []
    for workload, name in zip(WORKLOADS, (STATIC, RULE), strict=True):
        variable = compiled.get(name)
        assert variable is not None

        def serve(k: Any, a: Any, variable: Any = variable) -> Any:
            raw = variable.evaluate(k, a).serialized_value
            return DEFAULT if raw is None else json.loads(raw)

        cases.append(
            Case("setpoint core", workload, "none", "cv.evaluate(k, a)", {"cv": variable}, list(population), serve)
        )
    return cases


def setpoint_sdk_available() -> str | None:
    """None when Setpoint's SDK (configure/var/Variable.get) is importable, else why not."""
    try:
        import setpoint
    except ImportError as exc:  # pragma: no cover - the repo itself
        return f"setpoint not importable: {exc}"
    missing = [name for name in ("configure", "var") if not hasattr(setpoint, name)]
    if missing:
        return f"setpoint has no {', '.join(missing)} yet (the SDK has not landed)"
    return None


_SDK_VARIABLES: dict[str, Any] = {}


def setpoint_sdk_cases(population: list[tuple[str, dict[str, str]]], tracer: str) -> list[Case]:
    import setpoint

    setpoint.configure(config=setpoint_config())  # called again after a tracer provider is installed
    if not _SDK_VARIABLES:
        _SDK_VARIABLES[STATIC] = setpoint.var(name=STATIC, type=str, default=DEFAULT)
        _SDK_VARIABLES[RULE] = setpoint.var(name=RULE, type=str, default=DEFAULT)
    cases = []
    for workload, name in zip(WORKLOADS, (STATIC, RULE), strict=True):
        variable = _SDK_VARIABLES[name]

        def serve(k: Any, a: Any, variable: Any = variable) -> Any:
            return variable.get(targeting_key=k, attributes=a).value

        cases.append(
            Case(
                "setpoint sdk",
                workload,
                tracer,
                "v.get(targeting_key=k, attributes=a).value",
                {"v": variable},
                list(population),
                serve,
            )
        )
    return cases


# --------------------------------------------------------------------------------------------------------
# LaunchDarkly (server SDK, file data source: local evaluation, no network, no events)
# --------------------------------------------------------------------------------------------------------


def launchdarkly_flags() -> dict[str, Any]:
    def flag(key: str, variations: list[str], **extra: Any) -> dict[str, Any]:
        return {
            "key": key,
            "version": 1,
            "on": True,
            "variations": variations,
            "offVariation": 0,
            "targets": [],
            "contextTargets": [],
            "prerequisites": [],
            "rules": [],
            "salt": key,
            "trackEvents": False,
            "trackEventsFallthrough": False,
            "clientSideAvailability": {"usingEnvironmentId": False, "usingMobileKey": False},
            **extra,
        }

    static = flag(STATIC, ["blue"], fallthrough={"variation": 0})
    rule = flag(
        RULE,
        ["control", "treatment", "enterprise"],
        fallthrough={"rollout": {"variations": [{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}]}},
        rules=[
            {
                "id": "enterprise-us-uk",
                "clauses": [
                    {"attribute": "plan", "op": "in", "values": ["enterprise"], "negate": False},
                    {"attribute": "country", "op": "in", "values": ["US", "UK"], "negate": False},
                ],
                "variation": 2,
                "trackEvents": False,
            }
        ],
    )
    return {"flags": {STATIC: static, RULE: rule}, "segments": {}}


def launchdarkly_cases(population: list[tuple[str, dict[str, str]]], tmpdir: Path) -> list[Case]:
    from ldclient.client import LDClient
    from ldclient.config import Config
    from ldclient.context import Context
    from ldclient.integrations import Files

    logging.getLogger("ldclient").setLevel(logging.WARNING)
    path = tmpdir / "launchdarkly-flags.json"
    path.write_text(json.dumps(launchdarkly_flags()))
    config = Config(
        sdk_key="offline-benchmark",  # never sent: the file data source replaces streaming, events are off
        update_processor_class=Files.new_data_source(paths=[str(path)]),
        send_events=False,
        diagnostic_opt_out=True,
    )
    client = LDClient(config=config, start_wait=10)
    if not client.is_initialized():
        raise RuntimeError("LaunchDarkly client did not initialize from the file data source")
    contexts = [
        (k, Context.builder(k).set("plan", a["plan"]).set("country", a["country"]).build()) for k, a in population
    ]
    cases = []
    for workload, name in zip(WORKLOADS, (STATIC, RULE), strict=True):

        def serve(k: Any, a: Any, name: str = name) -> Any:
            return client.variation(name, a, DEFAULT)

        stmt = f"client.variation({name!r}, a, {DEFAULT!r})"
        cases.append(Case("launchdarkly", workload, "none", stmt, {"client": client}, contexts, serve))
    return cases


# --------------------------------------------------------------------------------------------------------
# GrowthBook (inline features: local evaluation, no network, no tracking callback)
# --------------------------------------------------------------------------------------------------------


def growthbook_features() -> dict[str, Any]:
    return {
        STATIC: {"defaultValue": "blue"},
        RULE: {
            "defaultValue": DEFAULT,
            "rules": [
                {"condition": {"plan": "enterprise", "country": {"$in": ["US", "UK"]}}, "force": "enterprise"},
                {
                    "key": RULE,
                    "variations": ["control", "treatment"],
                    "weights": [0.5, 0.5],
                    "coverage": 1.0,
                    "hashAttribute": "id",
                },
            ],
        },
    }


def growthbook_cases(population: list[tuple[str, dict[str, str]]]) -> list[Case]:
    from growthbook import GrowthBook

    logging.getLogger("growthbook").setLevel(logging.WARNING)
    gb = GrowthBook(features=growthbook_features())
    inputs = [(k, {"id": k, **a}) for k, a in population]
    cases = []
    for workload, name in zip(WORKLOADS, (STATIC, RULE), strict=True):

        def serve(k: Any, a: Any, name: str = name) -> Any:
            gb.set_attributes(a)
            return gb.get_feature_value(name, DEFAULT)

        stmt = f"gb.set_attributes(a); gb.get_feature_value({name!r}, {DEFAULT!r})"
        cases.append(Case("growthbook", workload, "none", stmt, {"gb": gb}, inputs, serve))
    return cases


# --------------------------------------------------------------------------------------------------------
# OpenTelemetry
# --------------------------------------------------------------------------------------------------------


class CountingSpanProcessor:
    """A span processor that exports nothing and only counts ended spans (to prove spans are made)."""

    def __init__(self) -> None:
        self.ended = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        self.ended += 1

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def install_tracer() -> CountingSpanProcessor:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    processor = CountingSpanProcessor()
    provider = TracerProvider()
    provider.add_span_processor(processor)  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)
    return processor


# --------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------

_LATENCY_LOOP = """
def run(inputs, pc, out):
    i = 0
    for k, a in inputs:
        t0 = pc()
        {stmt}
        out[i] = pc() - t0
        i += 1
"""

_THROUGHPUT_LOOP = """
def run(inputs, pc):
    t0 = pc()
    for k, a in inputs:
        {stmt}
    return pc() - t0
"""


def compile_loop(template: str, stmt: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    scope = dict(namespace)
    exec(compile(template.format(stmt=stmt), f"<loop: {stmt}>", "exec"), scope)
    return scope["run"]  # type: ignore[no-any-return]


class gc_paused:  # noqa: N801 - reads like a context manager function
    def __enter__(self) -> None:
        gc.collect()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        gc.enable()


def cycled(inputs: list[tuple[Any, Any]], n: int) -> list[tuple[Any, Any]]:
    reps, rest = divmod(n, len(inputs))
    return inputs * reps + inputs[:rest]


def percentile(sorted_samples: list[int], q: float) -> int:
    return sorted_samples[min(len(sorted_samples) - 1, int(q * len(sorted_samples)))]


def timer_overhead_ns(n: int) -> int:
    """Median of the latency loop with an empty body: two clock reads, the store and the loop step."""
    loop = compile_loop(_LATENCY_LOOP, "pass", {})
    inputs = [(None, None)] * n
    out = [0] * n
    medians = []
    for _ in range(3):
        with gc_paused():
            loop(inputs, time.perf_counter_ns, out)
        medians.append(statistics.median(out))
    return int(min(medians))


def measure(case: Case, calls: int, rounds: int, overhead_ns: int) -> Result:
    inputs = cycled(case.inputs, calls)
    latency = compile_loop(_LATENCY_LOOP, case.stmt, case.namespace)
    throughput = compile_loop(_THROUGHPUT_LOOP, case.stmt, case.namespace)
    pc = time.perf_counter_ns
    cpu = time.thread_time_ns  # throughput: CPU time of this thread, so other processes' load does not count
    throughput(case.inputs * 2, pc)  # warm-up: every key twice (caches, specialization)
    out = [0] * calls
    chunk = max(1_000, calls // THROUGHPUT_CHUNKS)
    chunks = [inputs[i : i + chunk] for i in range(0, calls - chunk + 1, chunk)]
    rates, p50s, p99s = [], [], []
    for _ in range(rounds):
        with gc_paused():
            elapsed = [throughput(part, cpu) for part in chunks]
        rates.append(statistics.median(len(part) / (ns / 1e9) for part, ns in zip(chunks, elapsed, strict=True)))
        with gc_paused():
            latency(inputs, pc, out)
        samples = sorted(out)
        p50s.append(max(0, percentile(samples, 0.50) - overhead_ns) / 1000)
        p99s.append(max(0, percentile(samples, 0.99) - overhead_ns) / 1000)
    return Result(case, statistics.median(rates), statistics.median(p50s), statistics.median(p99s))


def check(case: Case, population: list[tuple[str, dict[str, str]]]) -> dict[str, float]:
    """Resolve every key once, untimed; fail loudly if the system does not do what the workload says."""
    served: Counter[str] = Counter()
    for (k, a), (_, attrs) in zip(case.inputs, population, strict=True):
        value = case.serve(k, a)
        served[value] += 1
        if case.workload == "static":
            ok = value == "blue"
        elif expected_rule_match(attrs):
            ok = value == "enterprise"
        else:
            ok = value in ("control", "treatment")
        if not ok:
            raise AssertionError(f"{case.system} / {case.workload}: key {k!r} {attrs} was served {value!r}")
    split = {value: count / len(case.inputs) for value, count in sorted(served.items())}
    if case.workload != "static":
        for value in ("control", "treatment"):
            if not 0.22 <= split.get(value, 0.0) <= 0.28:
                raise AssertionError(f"{case.system}: rollout share of {value!r} is {split.get(value, 0.0):.3f}")
    return split


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def machine_info() -> dict[str, str]:
    cpu = cpu_model()
    versions = []
    for dist in ("setpoint", "launchdarkly-server-sdk", "growthbook", "opentelemetry-sdk", "pydantic"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    if "setpoint (not installed)" in versions:
        versions[0] = f"setpoint {_checkout_version()} (checkout)"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.platform})",
        "libraries": ", ".join(versions),
    }


def _checkout_version() -> str:
    import subprocess
    import tomllib

    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(version)
    return f"{version}+g{commit}"


def table(results: list[Result]) -> list[str]:
    baseline = {
        r.case.workload: r.p50_us for r in results if r.case.system == "setpoint sdk" and r.case.tracer == "none"
    }
    base_name = "setpoint sdk"
    if not baseline:
        baseline = {r.case.workload: r.p50_us for r in results if r.case.system == "setpoint core"}
        base_name = "setpoint core"
    header = ["system", "workload", "tracer", "calls/s (cpu)", "p50 µs", "p99 µs", f"p50 ÷ {base_name} p50"]
    rows = []
    for r in results:
        base = baseline.get(r.case.workload)
        ratio = f"{r.p50_us / base:.1f}x" if base else "n/a"
        rows.append(
            [
                r.case.system,
                r.case.workload,
                r.case.tracer,
                f"{r.calls_per_s:,.0f}",
                f"{r.p50_us:.2f}",
                f"{r.p99_us:.2f}",
                ratio,
            ]
        )
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(fmt(row) for row in rows)]


def target_lines(results: list[Result]) -> list[str]:
    lines = []
    for r in results:
        if r.case.system == "setpoint sdk" and r.case.tracer == "none":
            target = TARGET_P50_US[r.case.workload]
            verdict = "meets" if r.p50_us <= target else "MISSES"
            lines.append(
                f"setpoint sdk {r.case.workload}: p50 {r.p50_us:.2f} µs {verdict} the target of ≤ {target:g} µs"
            )
    return lines


# --------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k calls, 1 round: a smoke run, noisy numbers")
    parser.add_argument("--calls", type=int, default=None, help="calls per timed loop (default 200,000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case; medians are reported (default 3)")
    add_record_option(parser)
    args = parser.parse_args(argv)
    calls = args.calls or (20_000 if args.quick else 200_000)
    rounds = args.rounds or (1 if args.quick else 3)

    population = make_population()
    notes: list[str] = []
    cases: list[Case] = []

    def add(label: str, build: Callable[[], list[Case]]) -> None:
        try:
            cases.extend(build())
        except ImportError as exc:
            package = {"launchdarkly": "launchdarkly-server-sdk", "growthbook": "growthbook"}.get(label)
            hint = f": pip install {package} (or 'setpoint[bench]')" if package else ""
            notes.append(f"SKIPPED {label}: cannot import {exc.name or exc}{hint}")
            print(notes[-1], flush=True)

    add("setpoint core", lambda: setpoint_core_cases(population))
    sdk_missing = setpoint_sdk_available()
    if sdk_missing:
        notes.append(f"SKIPPED setpoint sdk: {sdk_missing}")
        print(notes[-1], flush=True)
    else:
        add("setpoint sdk", lambda: setpoint_sdk_cases(population, "none"))
    with tempfile.TemporaryDirectory() as tmp:
        add("launchdarkly", lambda: launchdarkly_cases(population, Path(tmp)))
    add("growthbook", lambda: growthbook_cases(population))

    load_start = load_average()
    overhead = timer_overhead_ns(calls)
    print(f"timer + loop overhead (median, subtracted): {overhead} ns; {calls:,} calls x {rounds} round(s) per case")

    def run_all(batch: list[Case]) -> list[Result]:
        done = []
        for workload in WORKLOADS:
            for case in (c for c in batch if c.workload == workload):
                split = check(case, population)
                result = measure(case, calls, rounds, overhead)
                result.split = split
                print(
                    f"  {case.system:<14} {case.workload:<13} tracer={case.tracer:<9} "
                    f"{result.calls_per_s:>12,.0f}/s  p50 {result.p50_us:6.2f} µs  p99 {result.p99_us:6.2f} µs  "
                    f"served {', '.join(f'{v}={s:.1%}' for v, s in result.split.items())}",
                    flush=True,
                )
                done.append(result)
        return done

    results = run_all(cases)
    if not sdk_missing:
        processor = install_tracer()
        tracer_results = run_all(setpoint_sdk_cases(population, "otel-sdk"))
        if processor.ended == 0:
            notes.append("WARNING: with the OpenTelemetry SDK tracer installed, Setpoint's SDK ended no spans")
            print(notes[-1])
        else:
            notes.append(f"tracer rows: {processor.ended:,} spans were ended into a no-export span processor")
        results += tracer_results
    # order rows by workload, Setpoint first
    results.sort(key=lambda r: WORKLOADS.index(r.case.workload))

    info = machine_info()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = table(results)
    print()
    print("\n".join(lines))
    print()
    for line in target_lines(results):
        print(line)
    for key, value in info.items():
        print(f"{key}: {value}")
    print(f"date: {when}")

    if args.record:
        body = [
            f"Measured {when} with `python benchmarks/resolve.py{' --quick' if args.quick else ''}`"
            f" ({calls:,} calls per timed loop, median of {rounds} round(s), {N_KEYS:,} targeting keys).",
            "",
            f"- Machine: {info['nproc']} CPUs (nproc), {info['cpu']}; {info['python']}",
            f"- Libraries: {info['libraries']}",
            f"- Timer + loop overhead subtracted from each per-call sample: {overhead} ns",
            f"- Load average (1 min) at start / end: {load_start} / {load_average()} (other work shares the machine;"
            " p99 is the figure it inflates most)",
            "",
            *lines,
            "",
            *(f"- {line}" for line in target_lines(results)),
            *(f"- {note}" for note in notes),
            "",
            "Method: inputs (attribute dicts, LaunchDarkly `Context`s, GrowthBook attribute dicts) are built before",
            "timing; each call is timed with two `time.perf_counter_ns()` reads and the median cost of an empty",
            "timed loop body is subtracted (p50/p99 are wall-clock). calls/s (cpu) comes from a separate loop without",
            "per-call timers, run in 20 chunks timed in the thread's CPU time (median chunk), so other processes'",
            "load does not count; GC is disabled while timing; each number is the median over the rounds.",
            "Setpoint's `otel-sdk` rows: a global SDK `TracerProvider` with one span processor that exports nothing;",
            "no span is active around the calls (each resolution span is a root span).",
            "LaunchDarkly evaluates locally from a file data source (events off); GrowthBook gets",
            "inline features (no tracking callback). Setpoint values are the `.value` of the `Resolved`.",
            "Half the calls match the two-condition rule, half fall through to the 50/50 rollout, for every system.",
        ]
        record_section(Path(args.record), SECTION_TITLE, "\n".join(body))
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
