"""Templates and composition benchmark: ``get()`` p50 of Setpoint's SDK versus the Logfire SDK (logfire-sdk 5.4),
side by side in one run, on one local config.

Run ``python benchmarks/templates.py`` (``--record`` writes its section of BENCHMARKS.md). Workloads:

* ``plain``: a ``str`` variable whose value has neither ``@{`` nor ``{{`` (Setpoint's prebuilt fast path). It is
  also measured with the Setpoint checkout at ``--baseline`` (default ``/work/main``, the code before templates)
  in a subprocess, so "unchanged" is a ratio measured in the same run;
* ``composed``: a ``str`` variable whose value references one other variable (``"... @{fragment}@"``);
* ``template``: a template variable rendering three ``{{fields}}`` from a pydantic model (``get(inputs)``).

Both SDKs use an in-memory config, no tracer provider (no spans), no targeting key. Each call is timed with two
``time.perf_counter_ns()`` reads; the median cost of an empty timed loop is subtracted; GC is off while timing;
the figure is the median p50 over ``--rounds`` rounds of ``--calls`` calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _report import REPO_ROOT, cpu_model, load_average, record_section

_REPO = str(REPO_ROOT)

VALUES = {
    "plain": "You are a helpful assistant.",
    "fragment": "Be concise.",
    "composed": "You are a helpful assistant. @{fragment}@",
    "template": "Hello {{user_name}}, you are on {{plan}} in {{language}}.",
}


def _timed(call: Callable[[], Any], calls: int, rounds: int) -> float:
    """Median over rounds of the p50 per-call wall time in µs (timer overhead subtracted)."""
    for _ in range(min(calls, 2000)):
        call()
    p50s = []
    for _ in range(rounds):
        gc.collect()
        gc.disable()
        try:
            empty = []
            for _ in range(calls):
                start = time.perf_counter_ns()
                empty.append(time.perf_counter_ns() - start)
            overhead = statistics.median(empty)
            samples = []
            for _ in range(calls):
                start = time.perf_counter_ns()
                call()
                samples.append(time.perf_counter_ns() - start)
        finally:
            gc.enable()
        p50s.append(max(statistics.median(samples) - overhead, 0) / 1000)
    return statistics.median(p50s)


def setpoint_calls() -> dict[str, Callable[[], Any]]:
    from pydantic import BaseModel

    import setpoint
    from setpoint.config import LabeledValue, Rollout, VariableConfig, VariablesConfig

    def config(name: str) -> VariableConfig:
        value = LabeledValue(version=1, serialized_value=json.dumps(VALUES[name]))
        return VariableConfig(name=name, labels={"prod": value}, rollout=Rollout(labels={"prod": 1.0}))

    setpoint.configure(config=VariablesConfig(variables={n: config(n) for n in VALUES}), instrument=False)
    calls: dict[str, Callable[[], Any]] = {}
    plain = setpoint.var("plain", type=str, default="")
    calls["plain"] = plain.get
    if hasattr(setpoint, "template_var"):

        class Inputs(BaseModel):
            user_name: str
            plan: str
            language: str

        setpoint.var("fragment", type=str, default="")
        composed = setpoint.var("composed", type=str, default="")
        template = setpoint.template_var("template", type=str, default="", inputs_type=Inputs)
        inputs = Inputs(user_name="Ada", plan="pro", language="French")
        calls["composed"] = composed.get
        calls["template"] = lambda: template.get(inputs)
        assert composed.get().value == "You are a helpful assistant. Be concise."
        assert template.get(inputs).value == "Hello Ada, you are on pro in French."
    return calls


def logfire_calls() -> dict[str, Callable[[], Any]]:
    import logfire
    from logfire.variables import LabeledValue, Rollout, VariableConfig, VariablesConfig
    from pydantic import BaseModel

    def config(name: str) -> VariableConfig:
        value = LabeledValue(version=1, serialized_value=json.dumps(VALUES[name]))
        return VariableConfig(name=name, labels={"prod": value}, rollout=Rollout(labels={"prod": 1.0}), overrides=[])

    lf = logfire.configure(
        send_to_logfire=False,
        console=False,
        local=True,
        variables=logfire.LocalVariablesOptions(
            config=VariablesConfig(variables={n: config(n) for n in VALUES}), instrument=False
        ),
    )

    class Inputs(BaseModel):
        user_name: str
        plan: str
        language: str

    plain = lf.var("plain", type=str, default="")
    lf.var("fragment", type=str, default="")
    composed = lf.var("composed", type=str, default="")
    template = lf.template_var("template", type=str, default="", inputs_type=Inputs)
    inputs = Inputs(user_name="Ada", plan="pro", language="French")
    assert composed.get().value == "You are a helpful assistant. Be concise."
    assert template.get(inputs).value == "Hello Ada, you are on pro in French."
    return {"plain": plain.get, "composed": composed.get, "template": lambda: template.get(inputs)}


def _child(system: str, calls: int, rounds: int) -> None:
    made = setpoint_calls() if system == "setpoint" else logfire_calls()
    print(json.dumps({name: _timed(call, calls, rounds) for name, call in made.items()}))


def _run(system: str, calls: int, rounds: int, pythonpath: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    args = [sys.executable, __file__, "--child", system, "--calls", str(calls), "--rounds", str(rounds)]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="/work/main", help="a Setpoint checkout without templates")
    parser.add_argument("--child", choices=["setpoint", "logfire"], help=argparse.SUPPRESS)
    parser.add_argument("--record", nargs="?", const="BENCHMARKS.md", default=None, metavar="PATH")
    args = parser.parse_args()
    if args.child:  # a measuring process: import setpoint from PYTHONPATH only
        _child(args.child, args.calls, args.rounds)
        return
    here = _REPO
    load_start = load_average()
    started = dt.datetime.now(dt.UTC)
    ours = _run("setpoint", args.calls, args.rounds, here)
    baseline = _run("setpoint", args.calls, args.rounds, args.baseline) if Path(args.baseline).is_dir() else {}
    theirs = _run("logfire", args.calls, args.rounds, here)
    load_end = load_average()
    rows = [
        "| workload | setpoint p50 µs | setpoint before templates p50 µs | logfire-sdk p50 µs | logfire ÷ setpoint |",
        "|---|---|---|---|---|",
    ]
    for name in ("plain", "composed", "template"):
        before = f"{baseline[name]:.2f}" if name in baseline else "n/a"
        ratio = theirs[name] / max(ours[name], 1e-9)
        rows.append(f"| {name} | {ours[name]:.2f} | {before} | {theirs[name]:.2f} | {ratio:.1f}x |")
    body = "\n".join(
        [
            f"Measured {started:%Y-%m-%d %H:%M} UTC with `python benchmarks/templates.py` ({args.calls:,} calls per "
            f"timed loop, median of {args.rounds} rounds; each system in its own process, one after the other).",
            "",
            f"- Machine: {os.cpu_count()} CPUs, {cpu_model()}; CPython {sys.version.split()[0]}",
            f"- Load average (1 min) at start / end: {load_start:.2f} / {load_end:.2f} (other engineers' tests share "
            "the machine)",
            f"- Baseline: the Setpoint checkout at `{args.baseline}` (before templates), plain workload only",
            "",
            *rows,
            "",
            "Workloads: `plain` = a `str` value without `@{`/`{{` (the prebuilt fast path); `composed` = a value with",
            "one `@{fragment}@` reference; `template` = `template_var(...).get(inputs)` rendering three `{{fields}}`",
            "from a pydantic model. In-memory config, no spans, no targeting key.",
        ]
    )
    print(body)
    if args.record:
        record = Path(args.record) if Path(args.record).is_absolute() else Path(_REPO) / args.record
        record_section(record, "## Templates and composition (benchmarks/templates.py)", body)


if __name__ == "__main__":
    main()
