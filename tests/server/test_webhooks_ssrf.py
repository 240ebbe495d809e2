"""A server with the default settings refuses webhook targets on private addresses over the API (SSRF)."""

from __future__ import annotations

import pytest

from tests.server.support import Project, ServerProcess


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1/variables/",
        "http://localhost/",
        "http://[::1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://0.0.0.0/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_private_targets_are_refused(server: ServerProcess, project: Project, url: str) -> None:
    with server.client(project) as client:
        created = client.post("/v1/webhooks/", json={"url": url, "events": ["variable.created"]})
        assert created.status_code == 422, created.text
        assert "SETPOINT_WEBHOOKS_ALLOW_PRIVATE=1" in created.json()["detail"]
        assert client.get("/v1/webhooks/").json() == []


def test_a_private_url_cannot_be_patched_in(server: ServerProcess, project: Project) -> None:
    with server.client(project) as client:
        # 93.184.215.14 is a public address (nothing is sent: the webhook is disabled at once).
        made = client.post(
            "/v1/webhooks/", json={"url": "http://93.184.215.14/x", "events": ["segment.created"], "enabled": False}
        )
        assert made.status_code == 201, made.text
        patched = client.patch(f"/v1/webhooks/{made.json()['id']}/", json={"url": "http://127.0.0.1/x"})
        assert patched.status_code == 422
        assert client.get(f"/v1/webhooks/{made.json()['id']}/").json()["url"] == "http://93.184.215.14/x"
