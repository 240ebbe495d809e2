"""Login hardening (issue 9, item 5) against a real ``setpoint serve``: failed logins are throttled per
account and per client address with growing delays (429 + Retry-After, and the page says when), failed
and throttled logins are in the audit; the session cookie is ``Secure`` over direct TLS and behind a
TLS-terminating proxy listed in ``--forwarded-allow-ips`` (and only then)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from setpoint._server.services import login_throttle
from setpoint._server.services.bootstrap import ADMIN_USERNAME
from setpoint._server.storage import open_storage
from setpoint._server.storage.records import AuditEntry
from tests.server.conftest import BACKENDS
from tests.server.support import ServerProcess

on_both_backends = pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")
SESSION_COOKIE = "setpoint_session"


def _client(server: ServerProcess, source: str = "127.0.0.1", verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """A browser-like client connecting from ``source`` (any 127.x.y.z address is local)."""
    transport = httpx.HTTPTransport(local_address=source, verify=verify)
    return httpx.Client(base_url=server.url, transport=transport, timeout=30, follow_redirects=False)


def _login(client: httpx.Client, username: str, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET the login form, then POST it (with its CSRF token), as a browser does."""
    form = client.get("/login", headers=headers)
    assert form.status_code == 200, form.text
    match = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert match is not None
    data = {"username": username, "password": password, "login_csrf": match.group(1), "next": "/"}
    # Sent by hand: a Secure cookie (behind a TLS proxy) would not go back over this test's plain HTTP.
    csrf_cookie = form.cookies["setpoint_login_csrf"]
    client.cookies.delete("setpoint_login_csrf")
    cookie = {"Cookie": f"setpoint_login_csrf={csrf_cookie}"}
    return client.post("/login", data=data, headers={**(headers or {}), **cookie})


def _session_cookie(response: httpx.Response) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}=")]
    assert len(found) == 1, response.headers
    return found[0]


def _is_secure(cookie: str) -> bool:
    return any(part.strip().lower() == "secure" for part in cookie.split(";"))


def _instance_audit(database_url: str, account: str) -> list[AuditEntry]:
    storage = open_storage(database_url)
    try:
        with storage.read() as tx:
            return tx.list_audit(None, entity_type="login", entity_name=account, limit=1000)
    finally:
        storage.dispose()


def _retry_after(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


@on_both_backends
def test_failed_logins_of_an_account_get_growing_delays(server: ServerProcess, database_url: str) -> None:
    with _client(server, "127.0.0.2") as client:
        free = login_throttle.ACCOUNT_FREE_FAILURES
        for attempt in range(1, free + 1):
            wrong = _login(client, ADMIN_USERNAME, f"wrong-{attempt}")
            assert wrong.status_code == 401, wrong.text
            assert ("retry-after" in wrong.headers) == (attempt == free)
        assert _retry_after(wrong) == 1
        # Throttled: even the right password is not checked.
        refused = _login(client, ADMIN_USERNAME, server.admin_password)
        assert refused.status_code == 429, refused.text
        assert _retry_after(refused) == 1
        assert "Too many failed logins" in refused.text and "Try again in 1 second" in refused.text
        assert re.search(r"after \d\d:\d\d:\d\d UTC", refused.text)
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        time.sleep(1.1)
        again = _login(client, ADMIN_USERNAME, "wrong-again")
        assert again.status_code == 401 and _retry_after(again) == 2  # the delay doubles
        assert _login(client, ADMIN_USERNAME, server.admin_password).status_code == 429
        time.sleep(2.1)
        ok = _login(client, ADMIN_USERNAME, server.admin_password)
        assert ok.status_code == 303, ok.text
        # A success forgets the account's failures.
        after = _login(client, ADMIN_USERNAME, "wrong-after-success")
        assert after.status_code == 401 and "retry-after" not in after.headers
        assert _login(client, ADMIN_USERNAME, server.admin_password).status_code == 303

    entries = [e for e in _instance_audit(database_url, ADMIN_USERNAME) if e.after["address"] == "127.0.0.2"]
    failed = [e for e in entries if e.action == "login_failed"]
    throttled = [e for e in entries if e.action == "login_throttled"]
    assert len(failed) == free + 2
    assert all(e.project_id is None and e.actor == "address:127.0.0.2" for e in entries)
    assert sorted(e.after["retry_after"] for e in failed)[-2:] == [1, 2]
    assert len(throttled) == 2  # one per delay, not one per refused attempt


@on_both_backends
def test_failed_logins_from_one_address_are_throttled_whatever_the_account(
    server: ServerProcess, database_url: str
) -> None:
    prefix = f"guess-{uuid.uuid4().hex[:6]}"
    with _client(server, "127.0.0.3") as attacker:
        for n in range(login_throttle.ADDRESS_FREE_FAILURES):
            response = _login(attacker, f"{prefix}-{n}", "x")
            assert response.status_code == 401, response.text
        assert _retry_after(response) == 1
        refused = _login(attacker, ADMIN_USERNAME, server.admin_password)
        assert refused.status_code == 429 and _retry_after(refused) == 1
    with _client(server, "127.0.0.4") as someone_else:
        assert _login(someone_else, ADMIN_USERNAME, server.admin_password).status_code == 303
    recorded = _instance_audit(database_url, f"{prefix}-0")
    assert [(e.action, e.after["address"], e.after["account_failures"]) for e in recorded] == [
        ("login_failed", "127.0.0.3", 1)
    ]


@on_both_backends
def test_throttling_holds_across_server_processes_on_one_database(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    second = ServerProcess(database_url=database_url, data_dir=tmp_path / "second")
    second.start()
    try:
        servers = (server, second)
        free = login_throttle.ACCOUNT_FREE_FAILURES
        for attempt in range(1, free + 1):  # alternating, as a load balancer sends them
            with _client(servers[attempt % 2], "127.0.0.6") as client:
                wrong = _login(client, ADMIN_USERNAME, f"wrong-{attempt}")
            assert wrong.status_code == 401, wrong.text
            assert ("retry-after" in wrong.headers) == (attempt == free)
        for target in servers:  # both refuse even the right password, from any address
            for source in ("127.0.0.6", "127.0.0.7"):
                with _client(target, source) as client:
                    refused = _login(client, ADMIN_USERNAME, server.admin_password)
                assert refused.status_code == 429, (target.url, source, refused.text)
        time.sleep(1.1)
        with _client(second, "127.0.0.6") as client:
            assert _login(client, ADMIN_USERNAME, server.admin_password).status_code == 303
        with _client(server, "127.0.0.6") as client:  # the success on one server cleared the account for both
            after = _login(client, ADMIN_USERNAME, "wrong-after")
            assert after.status_code == 401 and "retry-after" not in after.headers
            assert _login(client, ADMIN_USERNAME, server.admin_password).status_code == 303
    finally:
        second.stop()
    throttled = [
        e
        for e in _instance_audit(database_url, ADMIN_USERNAME)
        if e.action == "login_throttled" and e.after["address"] in ("127.0.0.6", "127.0.0.7")
    ]
    assert len(throttled) == 1  # the delay was announced once, by whichever server refused first


@on_both_backends
def test_the_session_cookie_is_not_secure_over_plain_http(server: ServerProcess) -> None:
    with _client(server, "127.0.0.5") as client:
        # No --forwarded-allow-ips: a client claiming HTTPS is not believed.
        ok = _login(client, ADMIN_USERNAME, server.admin_password, headers={"X-Forwarded-Proto": "https"})
        assert ok.status_code == 303, ok.text
        assert not _is_secure(_session_cookie(ok))


@pytest.fixture
def proxied_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that trusts forwarded headers from 127.0.0.1 only (a TLS-terminating proxy there)."""
    proc = ServerProcess(database_url="", data_dir=tmp_path / "data", extra_args=["--forwarded-allow-ips", "127.0.0.1"])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_forwarded_headers_count_only_from_allowed_proxies(proxied_server: ServerProcess) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with _client(proxied_server, "127.0.0.1") as via_proxy:
        ok = _login(via_proxy, ADMIN_USERNAME, proxied_server.admin_password, headers=forwarded)
        assert ok.status_code == 303, ok.text
        assert _is_secure(_session_cookie(ok))
        assert _login(via_proxy, "proxied-user", "x", headers=forwarded).status_code == 401
    with _client(proxied_server, "127.0.0.2") as direct:
        ok = _login(direct, ADMIN_USERNAME, proxied_server.admin_password, headers=forwarded)
        assert ok.status_code == 303, ok.text
        assert not _is_secure(_session_cookie(ok))
        assert _login(direct, "direct-user", "x", headers=forwarded).status_code == 401
    url = f"sqlite:///{proxied_server.data_dir / 'setpoint.db'}"
    # The throttle and the audit see the real client: the proxy's X-Forwarded-For, or the peer.
    assert [e.after["address"] for e in _instance_audit(url, "proxied-user")] == ["203.0.113.9"]
    assert [e.after["address"] for e in _instance_audit(url, "direct-user")] == ["127.0.0.2"]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_direct_tls_serves_https_with_a_secure_session_cookie(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    server = ServerProcess(
        database_url="",
        data_dir=tmp_path / "data",
        extra_args=["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        scheme="https",
        verify=trust,
    )
    server.start()
    try:
        with _client(server, verify=trust) as client:
            ok = _login(client, ADMIN_USERNAME, server.admin_password)
            assert ok.status_code == 303, ok.text
            assert _is_secure(_session_cookie(ok))
            assert client.get("/projects").status_code == 200  # the session works over HTTPS
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    finally:
        output = server.stop()
    assert f"https://127.0.0.1:{server.port}" in output
