"""UI sessions and CSRF over plain HTTP (no browser): cookies, hashed storage, CSRF refusals, logout."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from setpoint._server.security import hash_token
from tests.manage.live import LiveServer


def _login(client: httpx.Client, password: str, next_url: str = "/") -> httpx.Response:
    form = client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token is not None
    data = {"username": "admin", "password": password, "login_csrf": token.group(1), "next": next_url}
    return client.post("/login", data=data)


def _csrf(client: httpx.Client) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/p/default/variables").text)
    assert match is not None
    return match.group(1)


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    """A logged-in HTTP client (cookies kept)."""
    with httpx.Client(base_url=live.url, timeout=10) as http:
        assert _login(http, live.admin_password).status_code == 303
        yield http


def test_pages_need_a_login(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as http:
        response = http.get("/p/default/variables")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/p/default/variables"
        assert http.post("/p/default/variables/new", data={"name": "x"}).status_code == 303


def test_session_cookie_is_httponly_lax_and_stored_hashed(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as http:
        response = _login(http, live.admin_password)
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        token = http.cookies["setpoint_session"]
    with live.ctx.storage.read() as tx:
        assert tx.get_session(hash_token(token)) is not None
        assert tx.get_session(token) is None


def test_wrong_password_and_forged_login_form(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as http:
        assert _login(http, "wrong").status_code == 401
        forged = {"username": "admin", "password": live.admin_password, "login_csrf": "forged", "next": "/"}
        assert http.post("/login", data=forged).status_code == 400


def test_login_never_redirects_to_another_site(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as http:
        assert _login(http, live.admin_password, "//evil.example/").headers["location"] == "/"
        assert _login(http, live.admin_password, "https://evil.example/").headers["location"] == "/"


def test_posts_without_the_csrf_token_are_refused(client: httpx.Client) -> None:
    response = client.post("/p/default/variables/new", data={"name": "sneaky", "kind": "json"})
    assert response.status_code == 403
    assert "security token" in response.text
    response = client.post("/p/default/variables/new", data={"name": "sneaky", "kind": "json", "csrf_token": "x"})
    assert response.status_code == 403
    assert "sneaky" not in client.get("/p/default/variables").text
    refused = client.post("/p/default/variables/anything/validate", json={"value": "1"})
    assert refused.status_code == 403


def test_csrf_token_lets_a_form_through(client: httpx.Client) -> None:
    data = {"name": "via_form", "kind": "boolean", "csrf_token": _csrf(client)}
    response = client.post("/p/default/variables/new", data=data)
    assert response.status_code == 303
    assert "via_form" in client.get("/p/default/variables").text


def test_invalid_names_are_refused_with_a_message(client: httpx.Client) -> None:
    data = {"name": "9-lives", "kind": "json", "csrf_token": _csrf(client)}
    response = client.post("/p/default/variables/new", data=data)
    assert response.status_code == 422
    assert "is invalid: use letters, digits and underscores" in response.text


def test_logout_ends_the_session(live: LiveServer, client: httpx.Client) -> None:
    token = client.cookies["setpoint_session"]
    response = client.post("/logout", data={"csrf_token": _csrf(client)})
    assert response.status_code == 303
    with live.ctx.storage.read() as tx:
        assert tx.get_session(hash_token(token)) is None
    with httpx.Client(base_url=live.url, cookies={"setpoint_session": token}) as stale:
        assert stale.get("/p/default/variables").status_code == 303


def test_unknown_pages_render_an_html_error(client: httpx.Client) -> None:
    missing = client.get("/p/default/variables/nope")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "does not exist" in missing.text
    assert client.get("/p/no-such-project/variables").status_code == 404


def test_ui_pages_send_security_headers(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as http:
        page = http.get("/login")
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "x-frame-options" not in http.get("/healthz").headers
