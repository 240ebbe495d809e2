"""A person's own sessions over HTTP: listed, ended one by one or all others, the idle and absolute timeouts
(configured short here), expired sessions purged at the next login."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.manage.live import LiveServer, live_server
from tests.server.people_support import PASSWORD, make_person, ui_login

IDLE = 3


@pytest.fixture(scope="module")
def short_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = Path(tmp_path_factory.mktemp("setpoint-sessions"))
    with live_server(data_dir, session_idle_timeout=IDLE, session_absolute_timeout=3600) as server:
        yield server


def _csrf(client: httpx.Client) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sessions").text)
    assert match is not None
    return match.group(1)


def test_list_and_end_your_own_sessions(short_live: LiveServer) -> None:
    person = make_person(short_live.ctx, "Sam Sessions", project="default", role="viewer")
    other = make_person(short_live.ctx, "Olly Other", project="default", role="viewer")
    with (
        httpx.Client(base_url=short_live.url, timeout=10) as laptop,
        httpx.Client(base_url=short_live.url, timeout=10) as phone,
        httpx.Client(base_url=short_live.url, timeout=10) as tablet,
        httpx.Client(base_url=short_live.url, timeout=10) as theirs,
    ):
        for client in (laptop, phone, tablet):
            assert ui_login(client, person.email, PASSWORD).status_code == 303
        assert ui_login(theirs, other.email, PASSWORD).status_code == 303
        page = laptop.get("/sessions")
        assert page.status_code == 200 and page.text.count("data-session-id=") == 3
        assert "this session" in page.text and "ends after 3 seconds without use, and 1 hour(s)" in page.text
        ids = [int(i) for i in re.findall(r'data-session-id="(\d+)"', page.text)]
        their_ids = [int(i) for i in re.findall(r'data-session-id="(\d+)"', theirs.get("/sessions").text)]
        # Someone else's session id is not yours to end.
        assert laptop.post(f"/sessions/{their_ids[0]}/revoke", data={"csrf_token": _csrf(laptop)}).status_code == 303
        assert theirs.get("/sessions").status_code == 200
        # End one (the newest: the tablet), then every other one.
        laptop.post(f"/sessions/{ids[0]}/revoke", data={"csrf_token": _csrf(laptop)})
        assert tablet.get("/sessions").status_code == 303
        assert phone.get("/sessions").status_code == 200
        ended = laptop.post("/sessions/others/revoke", data={"csrf_token": _csrf(laptop)})
        assert "Ended+1+session" in ended.headers["location"]
        assert phone.get("/sessions").status_code == 303
        assert laptop.get("/sessions").status_code == 200
        assert laptop.post("/sessions/others/revoke", data={"csrf_token": "forged"}).status_code == 403


def test_idle_and_absolute_timeouts_and_purge(short_live: LiveServer) -> None:
    person = make_person(short_live.ctx, "Ida Idle", project="default", role="viewer")
    with httpx.Client(base_url=short_live.url, timeout=10) as client:
        login = ui_login(client, person.email, PASSWORD)
        assert "Max-Age=3600" in login.headers["set-cookie"]
        assert client.get("/sessions").status_code == 200
        time.sleep(IDLE + 0.5)
        assert client.get("/sessions").status_code == 303  # idle for too long
    with short_live.ctx.storage.write() as tx:  # a session past its absolute timeout
        tx.create_session("e" * 64, person.id, "c", datetime.now(UTC) - timedelta(seconds=1))
    with httpx.Client(base_url=short_live.url, timeout=10) as client:
        assert ui_login(client, person.email, PASSWORD).status_code == 303
    with short_live.ctx.storage.read() as tx:
        assert tx.get_session("e" * 64) is None  # purged at the login
