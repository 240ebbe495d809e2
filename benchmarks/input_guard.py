"""What the input guard (``services.input_limits.loads``, run on every JSON request body) costs next to the
``json.loads`` that parsing the body costs anyway: a small resolve body and a ~0.8 MB variable with 2,500
override rules, measured side by side in one run (best of N, so the ratio survives a noisy machine).

    python benchmarks/input_guard.py [--record]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

from _report import add_record_option, cpu_model, load_average, record_section

from setpoint._server.services import input_limits


def _best(work: Callable[[], object], rounds: int, repeat: int) -> float:
    """Best seconds per call over ``rounds`` rounds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            work()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def _bodies() -> dict[str, bytes]:
    small = {"targeting_key": "user-1", "attributes": {"plan": "pro", "country": "FR", "seats": 3}}
    large = {
        "name": "v",
        "overrides": [
            {
                "conditions": [
                    {"kind": "value-is-in", "attribute": f"a{i}", "values": [f"user-{j}" for j in range(20)]}
                ],
                "rollout": {"labels": {"x": 1.0}},
            }
            for i in range(2500)
        ],
    }
    return {"resolve body (90 B)": json.dumps(small).encode(), "large variable (0.8 MB)": json.dumps(large).encode()}


def main() -> None:
    """Measure and print (and with --record, write into BENCHMARKS.md)."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_record_option(parser)
    args = parser.parse_args()
    rows = ["| body | json.loads | guard (parse + limits) | ratio |", "|---|---|---|---|"]
    for name, raw in _bodies().items():
        repeat = 2000 if len(raw) < 1000 else 3
        parse = _best(functools.partial(json.loads, raw), 7, repeat)
        guard = _best(functools.partial(input_limits.loads, raw, "body"), 7, repeat)
        unit, scale = ("µs", 1e6) if parse < 1e-3 else ("ms", 1e3)
        rows.append(f"| {name} | {parse * scale:.1f} {unit} | {guard * scale:.1f} {unit} | {guard / parse:.2f}x |")
    body = "\n".join(
        [
            f"CPU: {cpu_model()}; load average {load_average():.1f} (shared machine).",
            "",
            *rows,
            "",
            "A JSON request pays the guard column on top of the route's own parse. The guard parses once and",
            "checks the limits with an escape scan of the raw text plus a walk over containers only; the full",
            "walk naming the offending location runs only when that flags something.",
        ]
    )
    print(body)
    if args.record:
        record_section(Path(args.record), "## Input guard (benchmarks/input_guard.py)", body)
        print(f"recorded in {args.record}")


if __name__ == "__main__":
    main()
