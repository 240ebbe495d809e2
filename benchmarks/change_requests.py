"""Change requests: what review adds to a variable write (the settings look-up in every write transaction), what
an admin's recorded bypass costs, how long opening a request (the refused write plus storing it) and applying
an approved one take. Service calls on a SQLite file (the same code as the API, without HTTP), interleaved.

    python benchmarks/change_requests.py [--rounds 100] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from _report import add_record_option, cpu_model, load_average, record_section

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))  # `python benchmarks/change_requests.py` from a checkout without an install


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"{statistics.median(samples) * 1000:.2f} ms (p90 {ordered[int(len(ordered) * 0.9) - 1] * 1000:.2f})"


def _timed(samples: list[float], call: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - start)
    return result


def _propose(ctx: Any, project_id: int, rollout: dict[str, Any], actor: str) -> int:
    """An editor's targeting change that needs review, stored as a request (what the API's handler does)."""
    from setpoint._server.services import editing
    from setpoint._server.services.change_requests import review
    from setpoint._server.services.change_requests import service as cr

    try:
        editing.set_targeting(ctx, project_id, "v", rollout, [], actor)
    except review.ReviewRequired as signal:
        return int(cr.open_from(ctx, signal).request["id"])
    raise AssertionError("the change should need review")


def _check_cost(ctx: Any, project_id: int, actor: str, n: int = 2000) -> float:
    """Microseconds per `review.check` of a description change (review on, nothing to review), in one transaction
    that is rolled back."""
    from setpoint._server.services.change_requests import review
    from setpoint._server.services.wire import read_variable_wire

    class _RollbackError(Exception):
        pass

    elapsed = 0.0
    try:
        with ctx.storage.write() as tx:
            variable = tx.lock_variable(project_id, "v")
            before = read_variable_wire(tx, variable)
            after = {**before, "description": "changed"}
            start = time.perf_counter()
            for _ in range(n):
                review.check(tx, project_id, actor, "update_details", "v", before, after)
            elapsed = time.perf_counter() - start
            raise _RollbackError
    except _RollbackError:
        pass
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    add_record_option(parser)
    args = parser.parse_args()
    from setpoint._server.services import editing, keys
    from setpoint._server.services.change_requests import service as cr
    from setpoint._server.services.changes import ChangeSink
    from setpoint._server.services.context import ServiceContext
    from setpoint._server.services.models import VariableIn
    from setpoint._server.services.people import members
    from setpoint._server.services.people import service as people
    from setpoint._server.services.variables import create_variable
    from setpoint._server.storage import open_storage
    from setpoint._server.storage.change_requests import ReviewSettings

    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(f"sqlite:///{tmp}/bench.db")
        storage.migrate()
        ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="bench"))
        reviewed = keys.create_key(ctx, "reviewed", frozenset({"read"}), "bench").project.id
        plain = keys.create_key(ctx, "plain", frozenset({"read"}), "bench").project.id
        actors = {}
        for role in ("editor", "admin"):
            link = people.invite(ctx, f"{role}@example.com", role, "bench")
            person = people.accept_link(ctx, link.token, "a long enough password")
            members.set_member(ctx, reviewed, f"{role}@example.com", role, "bench")
            members.set_member(ctx, plain, f"{role}@example.com", role, "bench")
            actors[role] = f"user:{person.id}:{role}"
        cr.set_settings(ctx, reviewed, ReviewSettings(protected_labels=True), actors["admin"])
        labels = {"production": {"target_type": "version", "serialized_value": "1"}}
        for pid in (reviewed, plain):
            create_variable(ctx, pid, VariableIn.model_validate({"name": "v", "labels": labels}), "bench")
            create_variable(ctx, pid, VariableIn.model_validate({"name": "free"}), "bench")
        off: list[float] = []
        bypass: list[float] = []
        opened: list[float] = []
        applied: list[float] = []
        for i in range(args.rounds):
            rollout = {"labels": {"production": (i % 50 + 1) / 100}}
            _timed(off, partial(editing.set_targeting, ctx, plain, "v", rollout, [], actors["admin"]))
            _timed(bypass, partial(editing.set_targeting, ctx, reviewed, "v", rollout, [], actors["admin"]))
            weights = {"labels": {"production": (i % 50 + 51) / 100}}
            request_id = _timed(opened, partial(_propose, ctx, reviewed, weights, actors["editor"]))
            cr.approve(ctx, reviewed, request_id, actors["admin"])
            _timed(applied, partial(cr.apply_request, ctx, reviewed, request_id, actors["editor"]))
        check_us = _check_cost(ctx, reviewed, actors["editor"])
        storage.dispose()
    body = f"""Machine: {cpu_model()}, load average {load_before:.1f} -> {load_average():.1f} (shared with other work);
SQLite file (fsync on commit), {args.rounds} rounds interleaved.

| what | median |
|---|---|
| review check in a write transaction (settings read + targeting diff), nothing to review | {check_us:.0f} µs |
| targeting change, review off | {_ms(off)} |
| targeting change by an admin, review on: applied, bypass recorded (request row + audit entry) | {_ms(bypass)} |
| targeting change by an editor, review on: write rolled back, request opened (2 transactions) | {_ms(opened)} |
| applying an approved request (locks, revision check, diff, validation, 2 audit entries) | {_ms(applied)} |

Review adds the check above to every variable write (one primary-key read of the project's settings, and a diff of
the targeting when review is on); a write that needs review costs about two writes (the refused transaction and the
one that stores the request)."""
    print(body)
    if args.record:
        record_section(Path(args.record), "## Change requests (benchmarks/change_requests.py)", body)


if __name__ == "__main__":
    main()
