"""Single sign-on with OpenID Connect (authorization code flow with PKCE, through authlib).

``begin`` makes the provider URL plus the ``state``, ``nonce`` and PKCE verifier that the browser keeps in a
short-lived HttpOnly cookie; ``finish`` checks the returned ``state``, exchanges the code, verifies the ID
token (signature from the provider's JWKS, issuer, audience, expiry, nonce) and returns its claims;
``login`` turns verified claims into a person (created at their first login when their email domain is
allowed), applies the groups-claim role mapping and records the login. Network calls block: run them in a
thread.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from setpoint._server.services import audit
from setpoint._server.services.changes import Change
from setpoint._server.services.context import ServiceContext
from setpoint._server.services.errors import ForbiddenError, InvalidError, ServiceError
from setpoint._server.services.people import actors
from setpoint._server.services.people.roles import OWNER, PROJECT_ROLES
from setpoint._server.services.people.service import find
from setpoint._server.settings import Settings
from setpoint._server.storage.records import AdminUser

DISCOVERY_TTL = 3600.0
HTTP_TIMEOUT = 10.0


class SsoError(ServiceError):
    """A single sign-on that cannot complete; the message says why (shown on the login page)."""

    status_code = 400


@dataclass(frozen=True)
class OidcConfig:
    """The provider settings (from :class:`Settings` / ``SETPOINT_OIDC_*``)."""

    issuer: str
    client_id: str
    client_secret: str
    name: str
    allowed_domains: tuple[str, ...]
    groups_claim: str
    role_mapping: tuple[tuple[str, str | None, str], ...]
    """(group, project or None for owner, role)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """None when SSO is not configured; :class:`InvalidError` for a half or malformed configuration."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id or not settings.oidc_client_secret:
            raise InvalidError("SETPOINT_OIDC_ISSUER is set: also set SETPOINT_OIDC_CLIENT_ID and _CLIENT_SECRET")
        domains = tuple(d.strip().lower().lstrip("@") for d in settings.oidc_allowed_domains.split(",") if d.strip())
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            name=settings.oidc_name,
            allowed_domains=domains,
            groups_claim=settings.oidc_groups_claim.strip(),
            role_mapping=parse_role_mapping(settings.oidc_role_mapping),
        )


def parse_role_mapping(text: str) -> tuple[tuple[str, str | None, str], ...]:
    """``admins=owner; shop-devs=shop:editor`` to (group, project, role) triples; 422 naming a bad pair."""
    pairs: list[tuple[str, str | None, str]] = []
    for item in (i.strip() for i in text.split(";")):
        if not item:
            continue
        group, _, target = item.partition("=")
        project, _, role = target.strip().rpartition(":")
        if target.strip() == OWNER:
            pairs.append((group.strip(), None, OWNER))
        elif group.strip() and project and role in PROJECT_ROLES:
            pairs.append((group.strip(), project, role))
        else:
            raise InvalidError(
                f"SETPOINT_OIDC_ROLE_MAPPING: {item!r} is not 'group=project:role' (role one of "
                f"{', '.join(PROJECT_ROLES)}) or 'group=owner'"
            )
    return tuple(pairs)


_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


def discover(config: OidcConfig) -> dict[str, Any]:
    """The provider's discovery document (cached for an hour)."""
    with _lock:
        cached = _discovery.get(config.issuer)
    if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL:
        return cached[1]
    try:
        response = httpx.get(f"{config.issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SsoError(f"the identity provider at {config.issuer} cannot be reached ({exc}); try again later") from exc
    if document.get("issuer", "").rstrip("/") != config.issuer:
        raise SsoError(f"the identity provider says its issuer is {document.get('issuer')!r}, not {config.issuer!r}")
    with _lock:
        _discovery[config.issuer] = (time.monotonic(), document)
    return document


@dataclass(frozen=True)
class Flow:
    """One sign-in in progress: where to send the browser, and what it must bring back."""

    url: str
    state: str
    nonce: str
    verifier: str


def _client(config: OidcConfig, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scope="openid email profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT,
    )


def begin(config: OidcConfig, redirect_uri: str) -> Flow:
    """The provider URL for a new sign-in (authorization code + PKCE + nonce)."""
    document = discover(config)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    with _client(config, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            document["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
        )
    return Flow(url=url, state=state, nonce=nonce, verifier=verifier)


def finish(
    config: OidcConfig,
    redirect_uri: str,
    *,
    code: str,
    state: str,
    expected_state: str,
    nonce: str,
    verifier: str,
) -> dict[str, Any]:
    """The verified claims of the ID token; :class:`SsoError` saying what failed."""
    if not expected_state or not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise SsoError("the sign-in's state does not match (an old, forged or replayed link); start again")
    if not code:
        raise SsoError("the identity provider returned no code; start again")
    document = discover(config)
    try:
        with _client(config, redirect_uri) as client:
            token = client.fetch_token(document["token_endpoint"], code=code, code_verifier=verifier)
        jwks = httpx.get(document["jwks_uri"], timeout=HTTP_TIMEOUT).json()
    except Exception as exc:  # the provider refused or failed: say so, never a 500
        raise SsoError(f"the identity provider refused the sign-in ({exc}); start again") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SsoError("the identity provider returned no ID token")
    try:
        decoded = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256", "PS256"])
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            leeway=60,
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise SsoError(f"the ID token is not valid ({exc}); start again") from exc
    claims = dict(decoded.claims)
    if not secrets.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
        raise SsoError("the ID token's nonce does not match this sign-in (a replayed token?); start again")
    return claims


def login(ctx: ServiceContext, config: OidcConfig, claims: dict[str, Any]) -> AdminUser:
    """The person of verified claims (created at their first login if their domain is allowed), with the
    groups-claim mapping applied; the login is in the instance audit."""
    from setpoint._server.services.people.service import check_email

    email = str(claims.get("email") or "")
    if not email:
        raise SsoError("the identity provider sent no email address for you; ask its administrator")
    if claims.get("email_verified") is not True:
        raise SsoError(f"your identity provider has not verified {email}; verify it there, then log in again")
    email = check_email(email)
    groups = claims.get(config.groups_claim) if config.groups_claim else None
    group_set = {str(g) for g in groups} if isinstance(groups, list) else set()
    changes: list[Change] = []
    with ctx.storage.write() as tx:
        person = find(tx, email)
        if person is None:
            domain = email.rpartition("@")[2]
            if domain not in config.allowed_domains:
                audit.record(tx, None, "anonymous", "login_failed", "session", email, None, {"via": "sso"})
                raise ForbiddenError(
                    f"{email} has no Setpoint account and people of {domain!r} are not created automatically; "
                    "ask an owner to invite you"
                )
            person = tx.create_admin_user(email, None, name=str(claims.get("name") or "")[:200])
            audit.record(tx, None, "sso", "create", "person", email, None, {"email": email, "via": "sso"})
        if not person.active:
            raise ForbiddenError(f"{email} is deactivated; ask an owner")
        actor = actors.person(person.id, person.display_name)
        for group, project_name, role in config.role_mapping:
            if group not in group_set:
                continue
            if project_name is None:
                if not person.is_owner:
                    person = tx.set_person(person.id, is_owner=True) or person
                    audit.record(tx, None, "sso", "set_owner", "person", email, None, {"group": group})
                continue
            project = tx.get_project(project_name)
            if project is None:
                continue
            new, previous = tx.set_membership(project.id, person.id, role)
            if previous is None or previous.role != new.role:
                before = None if previous is None else {"email": email, "role": previous.role}
                after = {"email": email, "role": role, "group": group}
                audit.record(tx, project.id, "sso", "change_role", "membership", email, before, after)
                changes.append(Change(project.id, "membership", "updated", email))
        audit.record(tx, None, actor, "login", "session", email, None, {"via": "sso"})
        for change in changes:
            ctx.sink.record(tx, change)
    for change in changes:
        ctx.sink.applied(change)
    return person
