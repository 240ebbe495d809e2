"""The webhook delivery worker driven by an injected clock (a day of retries in no time), claims that exclude
each other, the SSRF guard at save and at delivery time, and two server processes on one PostgreSQL sending
each delivery once. The receiver is the real receiver process, verifying with ``standardwebhooks``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from setpoint._server.services import audit
from setpoint._server.services.changes import ChangeSink
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import InvalidError
from setpoint._server.services.webhooks import service, targets
from setpoint._server.services.webhooks.worker import DeliveryWorker, WorkerOptions, backoff
from setpoint._server.storage import Storage
from setpoint._server.storage import webhooks as store
from tests.server.conftest import BACKENDS
from tests.server.support import ServerProcess, make_project
from tests.server.webhook_receiver import Receiver


@dataclass
class FakeClock:
    """A clock the test moves."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, migrated database of its own (a worker claims every due delivery of its database)."""
    from setpoint._server.storage import open_storage

    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_database")
    else:
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    found = open_storage(url)
    found.migrate()
    try:
        yield found
    finally:
        found.dispose()


@pytest.fixture
def workers() -> Iterator[list[DeliveryWorker]]:
    """Workers a test makes (not started: the test runs their steps); closed afterwards."""
    made: list[DeliveryWorker] = []
    yield made
    for worker in made:
        worker.close()


def _worker(
    workers: list[DeliveryWorker], storage: Storage, options: WorkerOptions, clock: FakeClock, **kw: Any
) -> DeliveryWorker:
    worker = DeliveryWorker(storage, options, clock, **kw)
    workers.append(worker)
    return worker


def _setup(storage: Storage, receiver: Receiver, mode: str) -> tuple[ServiceContext, int, str, int]:
    """A project with one webhook (to a new receiver endpoint) and one queued event.
    Returns (ctx, project id, endpoint, webhook id)."""
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    project = make_project(ctx)
    endpoint = uuid.uuid4().hex[:10]
    hook = service.create_webhook(
        ctx,
        project.id,
        "tests",
        url=f"{receiver.url}/h/{endpoint}",
        events_wanted=["segment.created"],
        allow_private=True,
    )
    receiver.configure(endpoint, hook.secret, mode)
    with storage.write() as tx:
        audit.record(tx, project.id, "tests", "create", "segment", "s", None, {"key": "s"})
    return ctx, project.id, endpoint, hook.id


def _run_due(worker: DeliveryWorker) -> list[str]:
    """One pass of the worker's loop, in the test's thread: claim what is due and attempt it."""
    return [worker.attempt(claimed) for claimed in worker._claim(10)]


def _only_delivery(ctx: ServiceContext, project_id: int, webhook_id: int) -> store.Delivery:
    [delivery] = service.deliveries(ctx, project_id, webhook_id)
    return delivery


def test_failing_receiver_is_retried_with_backoff_for_a_day_then_failed(
    storage: Storage, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    ctx, project_id, endpoint, webhook_id = _setup(storage, receiver, "fail")
    clock = FakeClock()
    options = WorkerOptions(allow_private=True, timeout=5)
    worker = _worker(workers, storage, options, clock, rand=lambda: 0.5)  # jitter factor exactly 1
    start = _only_delivery(ctx, project_id, webhook_id).created_at
    gaps: list[float] = []
    while True:
        assert _run_due(worker) == [store.RETRYING] or _only_delivery(ctx, project_id, webhook_id).status == "failed"
        delivery = _only_delivery(ctx, project_id, webhook_id)
        if delivery.status == store.FAILED:
            break
        assert delivery.next_attempt_at is not None
        gaps.append((delivery.next_attempt_at - clock.now).total_seconds())
        assert _run_due(worker) == []  # not due before its time
        clock.now = delivery.next_attempt_at
    # 5 s, 10 s, 20 s ... doubling up to an hour, within a day of the event.
    assert gaps[:4] == pytest.approx([5, 10, 20, 40], abs=0.5)
    assert max(gaps) == pytest.approx(3600, abs=0.5)
    assert (clock.now - start) <= timedelta(days=1)
    assert (clock.now - start) > timedelta(hours=22)
    assert delivery.attempts == len(gaps) + 1 and 25 <= delivery.attempts <= 40
    assert delivery.response_status == 500 and delivery.next_attempt_at is None
    got = receiver.received(endpoint)
    assert len(got) == delivery.attempts and len({g["id"] for g in got}) == 1
    # Signed at the (moved) clock's time: the verifier's 5-minute tolerance accepts the first few attempts.
    assert all(g["verified"] for g in got[:5])


def test_receiver_back_after_hours_gets_the_event(
    storage: Storage, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    ctx, project_id, endpoint, webhook_id = _setup(storage, receiver, "fail")
    clock = FakeClock()
    worker = _worker(workers, storage, WorkerOptions(allow_private=True), clock)
    hook = service.get_webhook(ctx, project_id, webhook_id)
    for _ in range(12):  # a few hours of failures
        _run_due(worker)
        delivery = _only_delivery(ctx, project_id, webhook_id)
        assert delivery.status == store.RETRYING and delivery.next_attempt_at is not None
        clock.now = delivery.next_attempt_at
    assert clock.now - delivery.created_at > timedelta(hours=2)
    receiver.configure(endpoint, hook.secret, "ok")
    assert _run_due(worker) == [store.DELIVERED]
    got = receiver.received(endpoint)
    assert len(got) == 13 and got[0]["verified"]
    assert len({g["id"] for g in got}) == 1  # every attempt is the same message


def test_a_claim_excludes_other_workers_until_its_lease_ends(
    storage: Storage, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    ctx, project_id, endpoint, webhook_id = _setup(storage, receiver, "ok")
    clock = FakeClock()
    first = _worker(workers, storage, WorkerOptions(allow_private=True), clock)
    second = _worker(workers, storage, WorkerOptions(allow_private=True), clock)
    [claimed] = first._claim(10)
    assert second._claim(10) == []  # claimed: nobody else sends it
    assert _only_delivery(ctx, project_id, webhook_id).status == store.SENDING
    clock.now += timedelta(seconds=first.options.timeout + 61)  # its process died while sending
    [again] = second._claim(10)
    assert again.delivery.id == claimed.delivery.id and again.delivery.attempts == 2
    assert second.attempt(again) == store.DELIVERED
    assert len(receiver.received(endpoint)) == 1


def test_finished_deliveries_are_pruned_after_the_log_days(
    storage: Storage, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    ctx, project_id, _, webhook_id = _setup(storage, receiver, "ok")
    clock = FakeClock()
    worker = _worker(workers, storage, WorkerOptions(allow_private=True, log_days=30), clock)
    assert _run_due(worker) == [store.DELIVERED]
    assert storage.webhooks.prune(clock.now - timedelta(days=30)) == 0
    clock.now += timedelta(days=31)
    worker._maybe_prune()
    assert service.deliveries(ctx, project_id, webhook_id) == []


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    options = WorkerOptions(retry_base=5, max_delay=3600)
    assert backoff(1, options, lambda: 0.0) == 3.75 and backoff(1, options, lambda: 1.0) == 6.25
    assert backoff(3, options, lambda: 0.5) == 20
    assert backoff(30, options, lambda: 0.5) == 3600 and backoff(10_000, options, lambda: 1.0) == 4500


# --- SSRF --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
        "https://240.0.0.1/",
    ],
)
def test_private_targets_are_refused_when_saved(url: str) -> None:
    with pytest.raises(targets.RefusedTargetError) as refused:
        targets.check(url, allow_private=False)
    assert "SETPOINT_WEBHOOKS_ALLOW_PRIVATE=1" in refused.value.message
    assert targets.check(url, allow_private=True).url == url


def test_every_resolved_address_must_be_public() -> None:
    def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(targets.RefusedTargetError, match=r"10\.0\.0\.7"):
        targets.check("https://hooks.example.com/x", allow_private=False, resolve=resolve)
    found = targets.check("https://hooks.example.com/x", allow_private=False, resolve=lambda h, p: ["93.184.215.14"])
    assert found.addresses == ("93.184.215.14",) and found.port == 443


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http:///hook", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://exa mple.com/", "spaces"),
        ("http://" + "a" * 2000 + ".com/", "longer than"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(InvalidError, match=message):
        targets.check(url, allow_private=False)


def test_delivery_time_check_refuses_a_name_that_now_resolves_privately(
    storage: Storage, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, workers: list[DeliveryWorker]
) -> None:
    """DNS rebinding: the name was public when saved and points at the receiver (loopback) when sending. DNS is
    the one part replaced here: the test machine has no public name to rebind."""
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    project = make_project(ctx)
    endpoint = uuid.uuid4().hex[:10]
    answers = {"rebind.example": ["93.184.215.14"]}
    monkeypatch.setattr(targets, "_resolve", lambda host, port: answers[host])
    hook = service.create_webhook(
        ctx,
        project.id,
        "tests",
        url=f"http://rebind.example:{receiver.port}/h/{endpoint}",
        events_wanted=["segment.deleted"],
    )
    receiver.configure(endpoint, hook.secret)
    answers["rebind.example"] = ["127.0.0.1"]
    with storage.write() as tx:
        audit.record(tx, project.id, "tests", "delete", "segment", "s", {"key": "s"}, None)
    worker = _worker(workers, storage, WorkerOptions(allow_private=False), FakeClock())
    assert _run_due(worker) == [store.FAILED]
    delivery = _only_delivery(ctx, project.id, hook.id)
    assert delivery.error is not None and "refused" in delivery.error and "127.0.0.1" in delivery.error
    assert receiver.received(endpoint) == []


# --- several server processes ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_server_processes_on_one_postgresql_send_each_delivery_once(
    postgres_database: str, tmp_path: Path, receiver: Receiver
) -> None:
    env = {"SETPOINT_WEBHOOKS_ALLOW_PRIVATE": "1"}
    servers = [ServerProcess(database_url=postgres_database, data_dir=tmp_path / f"s{i}", env=env) for i in (1, 2)]
    for proc in servers:
        proc.start()
    try:
        from setpoint._server.storage import open_storage

        storage = open_storage(postgres_database)
        try:
            ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
            project = make_project(ctx)
        finally:
            storage.dispose()
        endpoint = uuid.uuid4().hex[:10]
        with servers[0].client(project) as client:
            made = client.post(
                "/v1/webhooks/", json={"url": f"{receiver.url}/h/{endpoint}", "events": ["variable.created"]}
            )
        receiver.configure(endpoint, made.json()["secret"])
        writes = 40
        for i in range(writes):
            with servers[i % 2].client(project) as client:
                client.post("/v1/variables/", json={"name": f"v{i}", "labels": {}}).raise_for_status()
        receiver.wait_for(endpoint, writes)
        time.sleep(2.5)  # both processes polled at least twice more: nothing is sent again
        got = receiver.received(endpoint)
    finally:
        for proc in servers:
            proc.stop()
    assert len(got) == writes
    assert len({g["id"] for g in got}) == writes
    assert sorted(g["body"]["data"]["name"] for g in got) == sorted(f"v{i}" for i in range(writes))
    assert all(g["verified"] for g in got)


# --- what the outbox costs a write ---------------------------------------------------------------------------


def test_the_outbox_costs_a_write_one_read_and_one_insert(storage: Storage, receiver: Receiver) -> None:
    """Without webhooks a variable write reads the project's enabled webhooks once; with five subscribed it also
    inserts their deliveries in one statement. Other audit entries (keys, members) cost nothing."""
    import sqlalchemy as sa

    from setpoint._server.services import keys, lifecycle
    from setpoint._server.storage.sql import SqlStorage

    assert isinstance(storage, SqlStorage)
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    project = make_project(ctx)
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "webhook" in statement:
            seen.append(statement.split()[0].upper())

    sa.event.listen(storage.engine, "before_cursor_execute", on_execute)
    try:
        lifecycle.create_variable(ctx, project.id, "quiet", "tests", kind="text")
        assert seen == ["SELECT"]
        for _ in range(5):
            service.create_webhook(
                ctx,
                project.id,
                "tests",
                url=f"{receiver.url}/h/none",
                events_wanted=["variable.created"],
                allow_private=True,
            )
        seen.clear()
        lifecycle.create_variable(ctx, project.id, "loud", "tests", kind="text")
        assert seen == ["SELECT", "INSERT"]
        seen.clear()
        keys.create_key(ctx, project.name, frozenset({"read"}), "tests")
        assert seen == []
    finally:
        sa.event.remove(storage.engine, "before_cursor_execute", on_execute)
    assert len(service.deliveries(ctx, project.id, service.list_webhooks(ctx, project.id)[0].id)) == 1


def test_an_attempt_connects_to_the_checked_address_and_keeps_the_name(
    storage: Storage, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, workers: list[DeliveryWorker]
) -> None:
    """The name is resolved once per attempt and the connection goes to that address, with the name in ``Host``
    (so a second lookup by the HTTP client cannot land elsewhere). DNS, and which address counts as public, are
    replaced: the test machine has only its loopback receiver."""
    ctx = ServiceContext(storage=storage, sink=ChangeSink(origin="tests"))
    project = make_project(ctx)
    endpoint = uuid.uuid4().hex[:10]
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(targets, "_resolve", resolve)
    monkeypatch.setattr(targets, "is_public", lambda address: True)
    hook = service.create_webhook(
        ctx,
        project.id,
        "tests",
        url=f"http://hooks.example:{receiver.port}/h/{endpoint}",
        events_wanted=["segment.deleted"],
    )
    receiver.configure(endpoint, hook.secret)
    with storage.write() as tx:
        audit.record(tx, project.id, "tests", "delete", "segment", "s", {"key": "s"}, None)
    worker = _worker(workers, storage, WorkerOptions(allow_private=False), FakeClock())
    assert _run_due(worker) == [store.DELIVERED]
    [got] = receiver.received(endpoint)
    assert got["verified"] and got["host"] == f"hooks.example:{receiver.port}"
    assert lookups == ["hooks.example", "hooks.example"]  # at save, and before the attempt
