"""Webhooks over the real server, on SQLite and PostgreSQL, delivered to a real receiver process that verifies
every signature with the ``standardwebhooks`` library: every event type, receiver down then up, 500 forever,
a hanging receiver, rolled-back writes, redelivery, test events, the Slack payload, roles and projects."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from setpoint._server.services import audit
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.webhooks.events import EVENT_TYPES
from tests.server.conftest import BACKENDS
from tests.server.people_support import PASSWORD, make_person, ui_login
from tests.server.support import Project, ServerProcess, free_port, make_project
from tests.server.webhook_receiver import Receiver

pytestmark = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")

RETRY_WINDOW = 20.0
"""Seconds a delivery is retried in these tests (the server's default is a day)."""
SERVER_ENV = {
    "SETPOINT_WEBHOOKS_ALLOW_PRIVATE": "1",  # the receiver is on 127.0.0.1
    "SETPOINT_WEBHOOKS_RETRY_BASE": "0.2",
    "SETPOINT_WEBHOOKS_RETRY_WINDOW": str(RETRY_WINDOW),
    "SETPOINT_WEBHOOKS_TIMEOUT": "1",
}


@pytest.fixture(scope="module")
def server(database_url: str, sqlite_dir: Path) -> Iterator[ServerProcess]:
    """The server, allowed to call the local receiver, retrying fast for a few seconds."""
    proc = ServerProcess(database_url=database_url, data_dir=sqlite_dir, env=SERVER_ENV)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _hook(
    server: ServerProcess,
    project: Project,
    receiver: Receiver,
    *,
    events: tuple[str, ...] = EVENT_TYPES,
    fmt: str = "standard",
    mode: str = "ok",
) -> tuple[str, dict[str, Any]]:
    """A webhook of ``project`` to a new receiver endpoint; returns (endpoint name, the webhook's JSON)."""
    name = uuid.uuid4().hex[:10]
    body = {"url": f"{receiver.url}/h/{name}", "events": list(events), "format": fmt}
    with server.client(project) as client:
        response = client.post("/v1/webhooks/", json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    assert made["secret"].startswith("whsec_")
    receiver.configure(name, made["secret"], mode)
    return name, made


def _deliveries(server: ServerProcess, project: Project, webhook_id: int) -> list[dict[str, Any]]:
    with server.client(project) as client:
        response = client.get(f"/v1/webhooks/{webhook_id}/deliveries/")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def _wait_status(
    server: ServerProcess, project: Project, webhook_id: int, status: str, timeout: float = 60.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found = _deliveries(server, project, webhook_id)
    while not (found and all(d["status"] == status for d in found)) and time.monotonic() < deadline:
        time.sleep(0.1)
        found = _deliveries(server, project, webhook_id)
    assert found and all(d["status"] == status for d in found), found
    return found


def _other_events(ctx: ServiceContext, project: Project) -> None:
    """The events of change requests, rollouts and schedules, recorded the way those services record them (an
    audit entry from another process, delivered by the server's worker)."""
    request = {"id": 7, "title": "Raise v2", "state": "open", "author": "tests", "variable": "flag"}
    rollout = {"id": 3, "variable": "flag", "label": "v2", "step": 2, "steps": 5, "weight": 0.4, "late": False}
    schedule = {"id": 9, "kind": "move_label", "due_at": "2026-11-30T12:00:00+00:00", "late": False}
    with ctx.storage.write() as tx:
        for action in ("opened", "approved", "rejected", "applied", "commented"):
            audit.record(tx, project.id, "tests", action, "change_request", "flag", None, {**request, "state": action})
        for action in ("started", "step", "paused", "completed", "aborted"):
            audit.record(tx, project.id, "tests", action, "rollout", "flag", None, rollout)
        for action in ("scheduled", "ran", "failed"):
            audit.record(tx, project.id, "tests", action, "schedule", "flag", None, schedule)


def test_every_event_type_arrives_signed(
    server: ServerProcess, server_ctx: ServiceContext, project: Project, receiver: Receiver
) -> None:
    name, hook = _hook(server, project, receiver)
    labels = {"production": {"target_type": "version", "serialized_value": "1"}}
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": "flag", "labels": labels}).raise_for_status()
        client.post("/v1/variables/flag/versions/", json={"value": 2, "label": "production"}).raise_for_status()
        segment = {"key": "beta", "name": "Beta", "included": ["a"]}
        client.post("/v1/segments/", json=segment).raise_for_status()
        client.put("/v1/segments/beta/", json={**segment, "included": ["a", "b"]}).raise_for_status()
        client.delete("/v1/segments/beta/").raise_for_status()
        client.delete("/v1/variables/flag/").raise_for_status()
    _other_events(server_ctx, project)

    got = receiver.wait_for(name, len(EVENT_TYPES))
    time.sleep(0.5)  # nothing more arrives (e.g. for `commented`, `paused`, `scheduled`: not subscribable)
    got = receiver.received(name)
    assert sorted(g["body"]["type"] for g in got) == sorted(EVENT_TYPES)
    assert all(g["verified"] for g in got), [g for g in got if not g["verified"]]
    by_type = {g["body"]["type"]: g["body"] for g in got}
    moved = by_type["label.moved"]["data"]
    assert moved["project"] == project.name and moved["name"] == "flag"
    assert moved["labels"]["production"]["before"]["serialized_value"] == "1"
    assert moved["labels"]["production"]["after"]["serialized_value"] == "2"
    assert by_type["variable.created"]["data"]["after"]["name"] == "flag"
    assert by_type["variable.deleted"]["data"]["after"] is None
    assert by_type["rollout.step"]["data"]["after"]["step"] == 2
    assert by_type["change_request.approved"]["data"]["after"]["state"] == "approved"
    # One delivery per event, all delivered, in the log with status, time and bodies.
    log = _wait_status(server, project, hook["id"], "delivered")
    assert len(log) == len(EVENT_TYPES)
    assert all(d["response_status"] == 200 and d["response_ms"] is not None and d["attempts"] == 1 for d in log)
    assert {d["event_id"] for d in log} == {g["id"] for g in got}
    assert all('"ok": true' in d["response_body"] for d in log)


def test_only_subscribed_events_are_sent(server: ServerProcess, project: Project, receiver: Receiver) -> None:
    name, _ = _hook(server, project, receiver, events=("variable.deleted",))
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": "gone", "labels": {}}).raise_for_status()
        client.delete("/v1/variables/gone/").raise_for_status()
    receiver.wait_for(name, 1)
    time.sleep(0.5)
    assert [g["body"]["type"] for g in receiver.received(name)] == ["variable.deleted"]


def test_rolled_back_write_sends_nothing(
    server: ServerProcess, server_ctx: ServiceContext, project: Project, receiver: Receiver
) -> None:
    name, _ = _hook(server, project, receiver, events=("segment.created", "segment.deleted"))

    def failing_change() -> None:
        with server_ctx.storage.write() as tx:
            audit.record(tx, project.id, "tests", "create", "segment", "never", None, {"key": "never"})
            raise RuntimeError("the change fails after its audit entry")

    with pytest.raises(RuntimeError):
        failing_change()
    # A write refused by validation through the API (after nothing was committed) sends nothing either.
    with server.client(project) as client:
        bad = client.post("/v1/segments/", json={"key": "bad", "name": "B", "included": ["a"], "rules": "x"})
        assert bad.status_code == 400
        client.post("/v1/segments/", json={"key": "marker", "name": "M", "included": ["a"]}).raise_for_status()
    got = receiver.wait_for(name, 1)
    time.sleep(1.5)  # the server's poll of other processes' work is 1 s
    got = receiver.received(name)
    assert [g["body"]["data"]["name"] for g in got] == ["marker"]


def test_receiver_down_for_a_while_then_up_gets_every_event(server: ServerProcess, project: Project) -> None:
    # Its own receiver process, so that stopping it affects nothing else.
    down = Receiver(free_port())
    down.start()
    try:
        name, hook = _hook(server, project, down, events=("variable.created",))
        down.stop()
        with server.client(project) as client:
            for i in range(5):
                client.post("/v1/variables/", json={"name": f"while_down_{i}", "labels": {}}).raise_for_status()
        deadline = time.monotonic() + 30
        log = _deliveries(server, project, hook["id"])
        while not all(d["attempts"] >= 2 for d in log) and time.monotonic() < deadline:
            time.sleep(0.1)
            log = _deliveries(server, project, hook["id"])
        assert len(log) == 5 and all(d["attempts"] >= 2 and d["status"] in ("retrying", "sending") for d in log), log
        assert all(d["error"] and d["next_attempt_at"] for d in log)
        down.start({name: {"secret": hook["secret"], "mode": "ok"}})
        got = down.wait_for(name, 5)
    finally:
        down.stop()
    assert sorted(g["body"]["data"]["name"] for g in got) == [f"while_down_{i}" for i in range(5)]
    assert all(g["verified"] for g in got)
    log = _wait_status(server, project, hook["id"], "delivered")
    assert all(d["attempts"] >= 3 for d in log)


def test_receiver_failing_forever_is_retried_a_bounded_number_of_times(
    server: ServerProcess, project: Project, receiver: Receiver
) -> None:
    name, hook = _hook(server, project, receiver, events=("variable.created",), mode="fail")
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": "failing", "labels": {}}).raise_for_status()
    log = _wait_status(server, project, hook["id"], "failed", timeout=RETRY_WINDOW + 60)
    [failed] = log
    # Backoff from 0.2 s doubling: a handful of attempts fit in the window, then it stops.
    assert 4 <= failed["attempts"] <= 10, failed
    assert failed["response_status"] == 500 and "HTTP 500" in failed["error"]
    assert failed["next_attempt_at"] is None
    time.sleep(1.0)
    assert len(receiver.received(name)) == failed["attempts"]


def test_hanging_receiver_times_out_and_neither_writes_nor_other_webhooks_wait(
    server: ServerProcess, project: Project, receiver: Receiver
) -> None:
    hanging, hung = _hook(server, project, receiver, events=("variable.created",), mode="hang")
    healthy, _ = _hook(server, project, receiver, events=("variable.created",))
    with server.client(project) as client:
        response = client.post("/v1/variables/", json={"name": "during_hang", "labels": {}}, timeout=5)
        assert response.status_code == 201  # the write did not wait for the receiver
    receiver.wait_for(healthy, 1)
    receiver.wait_for(hanging, 1)
    deadline = time.monotonic() + 30
    log = _deliveries(server, project, hung["id"])
    while not (log[0]["error"] or "").startswith("timed out") and time.monotonic() < deadline:
        time.sleep(0.1)
        log = _deliveries(server, project, hung["id"])
    assert log[0]["error"] == "timed out after 1 s", log
    assert log[0]["status"] in ("retrying", "sending", "failed")


def test_redirects_are_not_followed(server: ServerProcess, project: Project, receiver: Receiver) -> None:
    name, hook = _hook(server, project, receiver, events=("variable.created",), mode="redirect")
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": "redirected", "labels": {}}).raise_for_status()
    receiver.wait_for(name, 1)
    deadline = time.monotonic() + 30
    log = _deliveries(server, project, hook["id"])
    while log[0]["response_status"] is None and time.monotonic() < deadline:
        time.sleep(0.1)
        log = _deliveries(server, project, hook["id"])
    assert log[0]["response_status"] == 302 and log[0]["error"] == "the receiver answered HTTP 302"
    assert log[0]["status"] in ("retrying", "sending", "failed")
    assert receiver.received(f"{name}-redirected") == []


def test_redeliver_and_test_event(server: ServerProcess, project: Project, receiver: Receiver) -> None:
    name, hook = _hook(server, project, receiver, events=("variable.created",))
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": "again", "labels": {}}).raise_for_status()
        [first] = receiver.wait_for(name, 1)
        [delivery] = _wait_status(server, project, hook["id"], "delivered")
        again = client.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver/")
        assert again.status_code == 201, again.text
        assert again.json()["redelivery_of"] == delivery["id"]
        test = client.post(f"/v1/webhooks/{hook['id']}/test/")
        assert test.status_code == 201, test.text
        missing = client.post(f"/v1/webhooks/{hook['id']}/deliveries/2147483647/redeliver/")
        assert missing.status_code == 404
    got = receiver.wait_for(name, 3)
    [resent] = [g for g in got[1:] if g["body"]["type"] == "variable.created"]
    assert resent["id"] == first["id"] and resent["raw"] == first["raw"]  # same event, same webhook-id
    [tested] = [g for g in got if g["body"]["type"] == "webhook.test"]
    assert tested["verified"] and tested["body"]["data"]["project"] == project.name


def test_rotated_secret_signs_from_then_on(server: ServerProcess, project: Project, receiver: Receiver) -> None:
    name, hook = _hook(server, project, receiver, events=("variable.created",))
    with server.client(project) as client:
        rotated = client.post(f"/v1/webhooks/{hook['id']}/rotate-secret/").json()
        assert rotated["secret"] != hook["secret"] and rotated["secret"].startswith("whsec_")
        receiver.configure(name, rotated["secret"])
        client.post("/v1/variables/", json={"name": "rotated", "labels": {}}).raise_for_status()
        [got] = receiver.wait_for(name, 1)
        assert got["verified"]
        audit_log = client.get("/v1/audit/").json()
    webhook_entries = [e for e in audit_log if e["entity_type"] == "webhook"]
    assert [e["action"] for e in webhook_entries][:2] == ["rotate_secret", "create"]
    assert all("whsec_" not in str(e) for e in webhook_entries)  # the audit never holds the secret


def test_slack_payload(server: ServerProcess, project: Project, receiver: Receiver) -> None:
    name, _ = _hook(server, project, receiver, events=("variable.created", "label.moved"), fmt="slack")
    labels = {"production": {"target_type": "version", "serialized_value": "1"}}
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": "slacky", "labels": labels}).raise_for_status()
        client.put("/v1/variables/slacky/labels/production/", json={"target_type": "latest"}).raise_for_status()
    got = receiver.wait_for(name, 2)
    for entry in got:
        body = entry["body"]
        assert entry["verified"]
        assert set(body) == {"text", "blocks"}
        assert isinstance(body["text"], str) and "slacky" in body["text"] and project.name in body["text"]
        assert body["blocks"][0]["type"] == "section" and body["blocks"][0]["text"]["type"] == "mrkdwn"
        assert body["blocks"][1]["type"] == "context"
    texts = sorted(g["body"]["text"] for g in got)  # sent in parallel: either may arrive first
    assert "created variable `slacky`" in texts[0] and "moved label `production` of `slacky`" in texts[1]


def test_invalid_configurations_get_422_saying_what_to_fix(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        ftp = client.post("/v1/webhooks/", json={"url": "ftp://example.com/x", "events": ["variable.created"]})
        assert ftp.status_code == 422 and "http:// or https://" in ftp.json()["detail"]
        no_host = client.post("/v1/webhooks/", json={"url": "http:///x", "events": ["variable.created"]})
        assert no_host.status_code == 422 and "no host" in no_host.json()["detail"]
        unknown = client.post("/v1/webhooks/", json={"url": "http://127.0.0.1/", "events": ["variable.renamed"]})
        assert unknown.status_code == 422
        none = client.post("/v1/webhooks/", json={"url": "http://127.0.0.1/", "events": []})
        assert none.status_code == 422
        fmt = client.post("/v1/webhooks/", json={"url": "http://127.0.0.1/", "events": ["label.moved"], "format": "x"})
        assert fmt.status_code == 422
        missing = client.patch("/v1/webhooks/2147483647/", json={"enabled": False})
        assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]


def test_roles_and_projects(server: ServerProcess, server_ctx: ServiceContext, project: Project) -> None:
    viewer = make_person(server_ctx, "Wanda Viewer", project=project.name, role="viewer")
    editor = make_person(server_ctx, "Ed Editor", project=project.name, role="editor")
    admin = make_person(server_ctx, "Al Admin", project=project.name, role="admin")
    body = {"url": "http://127.0.0.1:9/hook", "events": ["variable.updated"]}
    url = f"{server.url}/v1/webhooks/"
    for person in (viewer, editor):
        refused = httpx.post(url, json=body, headers=person.headers())
        assert refused.status_code == 403 and "role" in refused.json()["detail"]
    made = httpx.post(url, json=body, headers=admin.headers())
    assert made.status_code == 201, made.text
    hook_id = made.json()["id"]
    listed = httpx.get(url, headers=viewer.headers())
    assert listed.status_code == 200 and [h["id"] for h in listed.json()] == [hook_id]
    assert "secret" not in listed.json()[0]
    assert "secret" not in httpx.get(f"{url}{hook_id}/", headers=editor.headers()).json()
    assert httpx.get(f"{url}{hook_id}/", headers=admin.headers()).json()["secret"].startswith("whsec_")
    for person in (viewer, editor):
        headers = person.headers()
        assert httpx.patch(f"{url}{hook_id}/", json={"enabled": False}, headers=headers).status_code == 403
        assert httpx.delete(f"{url}{hook_id}/", headers=headers).status_code == 403
        assert httpx.post(f"{url}{hook_id}/rotate-secret/", headers=headers).status_code == 403
        assert httpx.post(f"{url}{hook_id}/test/", headers=headers).status_code == 403
    assert httpx.get(f"{url}{hook_id}/deliveries/", headers=viewer.headers()).status_code == 200
    secret = httpx.get(f"{url}{hook_id}/", headers=admin.headers()).json()["secret"]
    # The web pages: a viewer sees the webhook and its log, never the secret; posting a change is refused.
    for person, sees_secret in ((viewer, False), (admin, True)):
        with httpx.Client(base_url=server.url, timeout=10) as browser:
            assert ui_login(browser, person.email, PASSWORD).status_code == 303
            shown = browser.get(f"/p/{project.name}/webhooks/{hook_id}")
            assert shown.status_code == 200 and "127.0.0.1:9/hook" in shown.text
            assert (secret in shown.text) is sees_secret
            assert ("Rotate secret" in shown.text) is sees_secret
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        ui_login(browser, viewer.email, PASSWORD)
        refused = browser.post(f"/p/{project.name}/webhooks/{hook_id}/rotate-secret", data={"csrf_token": "x"})
        assert refused.status_code == 403

    other = make_project(server_ctx)
    with server.client(other) as client:
        assert client.get("/v1/webhooks/").json() == []
        assert client.get(f"/v1/webhooks/{hook_id}/").status_code == 404
        assert client.get(f"/v1/webhooks/{hook_id}/deliveries/").status_code == 404
        assert client.patch(f"/v1/webhooks/{hook_id}/", json={"enabled": False}).status_code == 404
        assert client.delete(f"/v1/webhooks/{hook_id}/").status_code == 404
    disabled = httpx.patch(f"{url}{hook_id}/", json={"enabled": False}, headers=admin.headers())
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert httpx.delete(f"{url}{hook_id}/", headers=admin.headers()).status_code == 204
    assert httpx.get(f"{url}{hook_id}/", headers=admin.headers()).status_code == 404


def test_disabled_webhook_gets_nothing(server: ServerProcess, project: Project, receiver: Receiver) -> None:
    name, hook = _hook(server, project, receiver, events=("variable.created",))
    on, _ = _hook(server, project, receiver, events=("variable.created",))
    with server.client(project) as client:
        client.patch(f"/v1/webhooks/{hook['id']}/", json={"enabled": False}).raise_for_status()
        client.post("/v1/variables/", json={"name": "quiet", "labels": {}}).raise_for_status()
    receiver.wait_for(on, 1)
    time.sleep(0.5)
    assert receiver.received(name) == []
    assert _deliveries(server, project, hook["id"]) == []


def test_a_change_request_sends_its_events_and_the_variable_change_once_applied(
    server: ServerProcess, server_ctx: ServiceContext, project: Project, receiver: Receiver
) -> None:
    """The real change-request flow (review on for protected labels): an editor's change opens a request (no
    variable event: nothing changed), another editor approves it, the author applies it."""
    editor = make_person(server_ctx, "Rita Requester", project=project.name, role="editor")
    second = make_person(server_ctx, "Rex Reviewer", project=project.name, role="editor")
    admin = make_person(server_ctx, "Ann Admin", project=project.name, role="admin")
    labels = {
        "production": {"target_type": "version", "serialized_value": "1"},
        "staging": {"target_type": "version", "serialized_value": "2"},
    }
    with server.client(project) as client:
        client.post("/v1/variables/", json={"name": "reviewed", "labels": labels}).raise_for_status()
        client.put("/v1/variables/reviewed/targeting/", json={"rollout": {"labels": {"production": 1.0}}})
    review = {"review_protected_labels": True, "approver_role": "editor", "admins_may_bypass": True}
    with server.client(project, admin.key) as client:
        client.put("/v1/review-settings/", json=review).raise_for_status()
    wanted = ("variable.updated", "change_request.opened", "change_request.approved", "change_request.applied")
    name, _ = _hook(server, project, receiver, events=wanted)
    with server.client(project, editor.key) as client:
        proposed = client.put(
            "/v1/variables/reviewed/targeting/", json={"rollout": {"labels": {"production": 0.8, "staging": 0.2}}}
        )
        assert proposed.status_code == 202, proposed.text
        rid = proposed.json()["id"]
    [opened] = receiver.wait_for(name, 1)
    assert opened["body"]["type"] == "change_request.opened"
    assert opened["body"]["data"]["after"]["id"] == rid
    with server.client(project, second.key) as client:
        client.post(f"/v1/change-requests/{rid}/approve/").raise_for_status()
    with server.client(project, editor.key) as client:
        client.post(f"/v1/change-requests/{rid}/apply/").raise_for_status()
    got = receiver.wait_for(name, 4)
    time.sleep(0.5)
    got = receiver.received(name)
    assert sorted(g["body"]["type"] for g in got) == sorted(wanted)
    assert all(g["verified"] for g in got)
    [updated] = [g["body"]["data"] for g in got if g["body"]["type"] == "variable.updated"]
    assert updated["after"]["rollout"] == {"labels": {"production": 0.8, "staging": 0.2}}
