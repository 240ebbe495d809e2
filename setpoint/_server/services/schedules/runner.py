"""The runner of scheduled work: ``run_due(ctx)`` and the server's background thread.

Each due schedule is claimed, run and marked done (or failed) in ONE write transaction: the claim is a row
lock (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so other server processes skip the row; SQLite has a single
writer), the change is made in the same transaction through :mod:`intx`, and the schedule's new state commits
with it. A crash before the commit leaves the schedule pending and nothing applied; after it, the schedule is
done: a change is never applied twice. A change that fails is rolled back to a savepoint (the service's own
"transaction", see :mod:`intx`; a whole progressive-rollout step) and the failure is recorded instead.
Work that was due while no server ran is run when one starts, and marked late (by how much) in the schedule,
its audit entry and the UI.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy.engine import NestedTransaction

from setpoint._server.services import audit
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.people import actors
from setpoint._server.services.schedules import rollouts
from setpoint._server.services.schedules import service as schedules
from setpoint._server.services.schedules.intx import in_transaction
from setpoint._server.storage import WriteTx
from setpoint._server.storage import schedules as store
from setpoint._server.storage.schedules import Schedule
from setpoint._server.storage.sql_read import SqlReadTx

log = logging.getLogger("setpoint.schedules")

POLL_SECONDS = 1.0


def _savepoint(tx: WriteTx) -> NestedTransaction:
    assert isinstance(tx, SqlReadTx)
    return tx.conn.begin_nested()


def run_one(ctx: ServiceContext) -> Schedule | None:
    """Claim the oldest due schedule, run it and record the outcome, all in one transaction; the schedule as
    it ended (None when nothing is due)."""
    now = ctx.clock()
    with ctx.storage.read() as rtx:  # the poll: a read, so an idle SQLite server never takes the write lock
        due = store.next_due_at(rtx)
    if due is None or due > now:
        return None
    with in_transaction(ctx) as (tx, inner, sink):
        claimed = store.claim_due(tx, now)
        if claimed is None:
            return None
        actor = actors.via_schedule(claimed.created_by, claimed.id)
        late = schedules.late_seconds(claimed.due_at, now)
        error: str | None = None
        skipped = False
        step = claimed.kind == schedules.ROLLOUT_STEP
        try:
            if step:  # a step is all or nothing: the change and the rollout's bookkeeping
                with _savepoint(tx):
                    rollouts.run_step(inner, tx, claimed, actor, now)
            else:
                # Each transaction of the service is a savepoint of this one: what it would have committed on
                # its own (e.g. a change request marked stale before its apply is refused) is kept.
                schedules.require_author_role(tx, claimed.project_id, claimed.created_by)
                schedules.apply_kind(inner, claimed.project_id, claimed.variable, claimed.kind, claimed.payload, actor)
        except rollouts.StepSkippedError:
            skipped = True
            sink.discard()
        except Exception as exc:
            if step:
                sink.discard()
            error = schedules.error_message(exc)
            if error.startswith("internal error"):
                log.exception("scheduled work %s failed", claimed.id)
        state = store.CANCELLED if skipped else store.FAILED if error else store.DONE
        store.finish_schedule(tx, claimed.id, state, ran_at=None if skipped else now, late_seconds=late, error=error)
        finished = store.get_schedule(tx, claimed.project_id, claimed.id)
        assert finished is not None
        if claimed.kind == schedules.ROLLOUT_STEP:
            if error is not None:
                rollouts.step_failed(tx, claimed, actor, error, now)
        elif not skipped:
            after = schedules.schedule_json(finished)
            action = "failed" if error else "ran"
            audit.record(tx, claimed.project_id, actor, action, "schedule", claimed.variable, None, after)
    if error is None and not skipped:
        log.info("ran scheduled work %s (%s)%s", finished.id, finished.kind, f", {late}s late" if late else "")
    return finished


def run_due(ctx: ServiceContext, *, limit: int = 100) -> list[Schedule]:
    """Run every schedule due at ``ctx.clock()`` (up to ``limit``), oldest first; the schedules as they ended."""
    finished: list[Schedule] = []
    while len(finished) < limit:
        one = run_one(ctx)
        if one is None:
            break
        finished.append(one)
    return finished


class ScheduleRunner:
    """A background thread running due work every :data:`POLL_SECONDS` (sooner when :meth:`wake` is called)."""

    def __init__(self, ctx: ServiceContext, poll_seconds: float = POLL_SECONDS) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._loop, name="setpoint-schedules", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for due work now (after new work was scheduled)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread (a run in progress finishes first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._stop.is_set() and run_due(self.ctx, limit=20):
                    pass
            except Exception:  # the database may be away for a moment: the next poll retries
                log.exception("running scheduled work failed; retrying")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    @staticmethod
    def due_now(ctx: ServiceContext, now: datetime | None = None) -> bool:
        """Whether some work is due (for health pages and tests)."""
        with ctx.storage.read() as tx:
            due = store.next_due_at(tx)
        return due is not None and due <= (now or ctx.clock())
