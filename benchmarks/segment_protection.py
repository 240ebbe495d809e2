"""Segment protection: what the protected-label check adds to a segment write (SQLite, in process).

An editor's change of who is in a segment walks the segment's referrers (segments that include it, the variables
whose overrides use them) and reads those variables' targeting; an admin's skips the walk. Measured in projects of
10 and 1,000 variables where every tenth variable uses the segment (1 and 100 referrers), with the check passing
(the variables serve no protected label), side by side with the same write by an admin.

    python benchmarks/segment_protection.py [--rounds 200] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _report import add_record_option, cpu_model, load_average, record_section

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))  # `python benchmarks/segment_protection.py` from a checkout

SIZES = (10, 1000)


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    add_record_option(parser)
    args = parser.parse_args()
    from setpoint._server.services import editing, keys, lifecycle
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.services.context import ServiceContext
    from setpoint._server.services.people import members
    from setpoint._server.services.people import service as people
    from setpoint._server.services.segments import service as segments
    from setpoint._server.storage import open_storage

    load_before = load_average()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(f"sqlite:///{tmp}/bench.db")
        storage.migrate()
        ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"))
        actors: dict[str, str] = {}
        for role in ("editor", "admin"):
            link = people.invite(ctx, f"{role}@example.com", role.title(), "bench")
            person = people.accept_link(ctx, link.token, "a long enough password")
            actors[role] = f"user:{person.id}:{role.title()}"
        for size in SIZES:
            project = f"p{size}"
            keys.create_key(ctx, project, frozenset({"read"}), "bench")
            pid = keys.get_project(ctx, project).id
            for role in actors:
                members.set_member(ctx, pid, f"{role}@example.com", role, "bench")
            segments.create_segment(ctx, pid, {"key": "beta", "name": "Beta", "included": ["u0"]}, "bench")
            rule = {"conditions": [{"kind": "in-segment", "segment": "beta"}], "rollout": {"labels": {"beta": 1.0}}}
            for i in range(size):
                name = f"var_{i:05d}"
                lifecycle.create_variable(ctx, pid, name, "bench", kind="boolean")
                editing.create_version(ctx, pid, name, "true", "bench", label="beta")
                if i % 10 == 0:
                    editing.set_targeting(ctx, pid, name, {"labels": {}}, [rule], "bench")
            samples: dict[str, list[float]] = {role: [] for role in actors}
            for n in range(args.rounds):  # interleaved, so both see the same load
                for role, actor in actors.items():
                    data = {"name": "Beta", "included": [f"u{n}", role]}
                    start = time.perf_counter()
                    segments.replace_segment(ctx, pid, "beta", data, actor)
                    samples[role].append(time.perf_counter() - start)
            editor, admin = statistics.median(samples["editor"]), statistics.median(samples["admin"])
            rows.append(
                f"| {size} | {max(1, size // 10)} | {_ms(samples['editor'])} | {_ms(samples['admin'])} "
                f"| {(editor - admin) * 1000:+.2f} ms |"
            )
        storage.dispose()
    table = "\n".join(rows)
    body = f"""Machine: {cpu_model()}, load average {load_before:.1f} -> {load_average():.1f} (shared with other work).
{args.rounds} segment replacements per role and size, medians.

| variables | variables using the segment | editor (check runs, passes) | admin (check skipped) | check |
|---|---|---|---|---|
{table}

The check reads the referrers only (`segment_referrers` per segment on the way, one batched read of those
variables' targeting): its SQL statements are the same at both sizes (`tests/server/test_write_cost.py`); the time
grows with the rows read for the 100 referrers."""
    print(body)
    if args.record:
        record_section(Path(args.record), "## Segment protection (benchmarks/segment_protection.py)", body)


if __name__ == "__main__":
    main()
