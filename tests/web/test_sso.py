"""Single sign-on against a real OpenID Connect provider process (authlib server classes, its own port):
people created at their first login (allowed domains), the groups claim mapped to roles, password login
turned off, and the refusals: wrong state, wrong nonce, unverified email, a domain that is not allowed."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from setpoint._server.services.people import service as people
from tests.manage.live import LiveServer, live_server
from tests.server.oidc_support import CLIENT_ID, CLIENT_SECRET, IDP_PASSWORD, Provider, oidc_provider

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

USERS = {
    "sue": {"email": "sue@corp.example", "email_verified": True, "name": "Sue Sso", "groups": ["shop-admins"]},
    "ned": {"email": "ned@corp.example", "email_verified": True, "name": "Ned New", "groups": []},
    "una": {"email": "una@corp.example", "email_verified": False, "name": "Una Unverified", "groups": []},
    "out": {"email": "out@elsewhere.example", "email_verified": True, "name": "Out Sider", "groups": []},
    "bro": {"email": "bro@corp.example", "email_verified": True, "name": "Bro Browser", "groups": ["owners"]},
}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider(USERS) as running:
        yield running


@pytest.fixture(scope="module")
def live(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        Path(tmp_path_factory.mktemp("setpoint-sso")),
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_name="Test IdP",
        oidc_allowed_domains="corp.example",
        oidc_groups_claim="groups",
        oidc_role_mapping="shop-admins=default:admin; owners=owner",
        password_login=False,
    ) as server:
        yield server


def _start(client: httpx.Client) -> httpx.Response:
    """Follow Setpoint's redirect to the provider; the provider's login form."""
    begin = client.get("/login/oidc", params={"next": "/p/default/members"})
    assert begin.status_code == 303, begin.text
    return client.get(begin.headers["location"])


def _sign_in_at_provider(client: httpx.Client, form_page: httpx.Response, login: str) -> str:
    """Submit the provider's form; the callback URL it redirects to."""
    action = re.search(r'action="([^"]+)"', form_page.text)
    assert action is not None
    url = str(form_page.url.join(action.group(1).replace("&amp;", "&")))
    answer = client.post(url, data={"login": login, "password": IDP_PASSWORD})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def test_first_login_creates_the_person_and_maps_groups_to_roles(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=20) as client:
        page = client.get("/login")
        assert "Log in with Test IdP" in page.text and 'name="password"' not in page.text
        callback = _sign_in_at_provider(client, _start(client), "sue")
        done = client.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/p/default/members", done.text
        members = client.get("/p/default/members")
        assert members.status_code == 200 and "Sue Sso" in members.text
        assert "data-my-role>admin<" in members.text.replace('"', "")  # shop-admins -> admin of default
        # A second login finds the same person.
        client.cookies.clear()
        assert client.get(_sign_in_at_provider(client, _start(client), "sue")).status_code == 303
    everyone = {p.username: p for p in people.list_people(live.ctx)}
    assert everyone["sue@corp.example"].display_name == "Sue Sso"
    assert everyone["sue@corp.example"].password_hash is None
    with live.ctx.storage.read() as tx:
        logins = [e for e in tx.list_audit(None) if e.action == "login" and e.entity_name == "sue@corp.example"]
    assert len(logins) == 2 and logins[0].after == {"via": "sso"}


def test_password_login_is_off_when_sso_says_so(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        form = client.get("/login").text
        token = re.search(r'name="login_csrf" value="([^"]+)"', form)
        assert token is None  # no password form at all
        client.cookies.set("setpoint_login_csrf", "x", path="/login")
        refused = client.post("/login", data={"username": "admin", "password": "correct horse battery staple",
                                              "login_csrf": "x"})  # fmt: skip
        assert refused.status_code == 403 and "Password login is turned off" in refused.text
        assert "setpoint_session" not in client.cookies


@pytest.mark.parametrize(
    ("login", "tamper", "message"),
    [
        ("ned", "state", "state does not match"),
        ("ned", "nonce", "nonce does not match"),
        ("una", "", "has not verified una@corp.example"),
        ("out", "", "not created automatically; ask an owner to invite you"),
        ("ned", "no-cookie", "This sign-in expired or was started elsewhere"),
    ],
)
def test_refused_sign_ins_change_nothing(live: LiveServer, login: str, tamper: str, message: str) -> None:
    before = {p.username for p in people.list_people(live.ctx)}
    with httpx.Client(base_url=live.url, timeout=20) as client:
        callback = _sign_in_at_provider(client, _start(client), login)
        if tamper == "state":
            query = parse_qs(urlparse(callback).query)
            callback = f"{live.url}/login/oidc/callback?code={query['code'][0]}&state=forged"
        elif tamper == "nonce":
            cookie = json.loads(base64.urlsafe_b64decode(client.cookies["setpoint_sso"]))
            cookie["n"] = "another-nonce"
            forged = base64.urlsafe_b64encode(json.dumps(cookie).encode()).decode()
            client.cookies.set("setpoint_sso", forged, domain="127.0.0.1", path="/login/oidc")
        elif tamper == "no-cookie":
            client.cookies.clear()
        refused = client.get(callback)
        assert refused.status_code in (400, 403), refused.text
        assert message in refused.text.replace("&#39;", "'")
        assert "setpoint_session" not in client.cookies
    assert {p.username for p in people.list_people(live.ctx)} == before


@pytest.mark.browser
def test_sso_journey_in_the_browser(live: LiveServer, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(f"{live.url}/")
    page.get_by_role("link", name="Log in with Test IdP").click()
    page.get_by_label("IdP login").fill("bro")
    page.get_by_label("IdP password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Sign in to the IdP").click()
    page.wait_for_url("**/variables")
    assert page.locator("[data-my-name]").inner_text() == "Bro Browser"
    page.goto(f"{live.url}/people")  # the owners group made them an owner
    assert "Bro Browser" in page.locator("main").inner_text()
