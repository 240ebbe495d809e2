"""A small but real OpenID Connect provider for the SSO tests, built on authlib's server-side classes
(``AuthorizationServer``, ``AuthorizationCodeGrant`` with PKCE, ``OpenIDCode``) and served by werkzeug.

Run it as its own process: ``python -m tests.server.oidc_provider PORT USERS_JSON``. It publishes discovery
and a JWKS, shows a login form at the authorization endpoint, issues codes, and answers the token endpoint
with an RS256-signed ID token carrying ``email``, ``email_verified``, ``name`` and ``groups``.
USERS_JSON maps a login to ``{"password", "email", "email_verified", "name", "groups"}``; the one client is
``setpoint-test`` / ``test-secret``, redirecting anywhere under ``http://127.0.0.1``.
"""

from __future__ import annotations

import html
import json
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import JsonPayload, JsonRequest, OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants
from joserfc.jwk import RSAKey
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

CLIENT_ID = "setpoint-test"
CLIENT_SECRET = "test-secret"
KEY = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})


@dataclass
class User:
    login: str
    password: str
    email: str
    email_verified: bool
    name: str
    groups: list[str]

    def get_user_id(self) -> str:
        return self.login


@dataclass
class Client:
    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in ("openid", "email", "profile", "groups"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri.startswith("http://127.0.0.1")

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    user: User
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


USERS: dict[str, User] = {}
CODES: dict[str, Code] = {}
ISSUER = ""


class Payload(OAuth2Payload):
    def __init__(self, request: Request) -> None:
        self._request = request

    @property
    def data(self) -> Any:
        return self._request.values

    @cached_property
    def datalist(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = defaultdict(list)
        for key in self.data:
            values[key].extend(self.data.getlist(key))
        return values


class WerkzeugRequest(OAuth2Request):
    def __init__(self, request: Request) -> None:
        super().__init__(method=request.method, uri=request.url, headers=request.headers)
        self._request = request
        self.payload = Payload(request)

    @property
    def args(self) -> Any:
        return self._request.args

    @property
    def form(self) -> Any:
        return self._request.form


class WerkzeugJsonPayload(JsonPayload):
    def __init__(self, request: Request) -> None:
        self._request = request

    @property
    def data(self) -> Any:
        return self._request.get_json()


class Server(AuthorizationServer):
    def query_client(self, client_id: str) -> Client | None:
        return Client() if client_id == CLIENT_ID else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        pass

    def create_oauth2_request(self, request: Request) -> OAuth2Request:
        return WerkzeugRequest(request)

    def create_json_request(self, request: Request) -> JsonRequest:
        json_request = JsonRequest(request.method, request.url, request.headers)
        json_request.payload = WerkzeugJsonPayload(request)
        return json_request

    def handle_response(self, status_code: int, payload: Any, headers: list[tuple[str, str]]) -> Response:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        return Response(body, status=status_code, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        CODES[code] = Code(
            code=code,
            user=request.user,
            redirect_uri=data.get("redirect_uri", ""),
            scope=request.payload.scope or "",
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        return CODES.get(code)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        CODES.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> User:
        return authorization_code.user


class OpenIDCode(oidc_grants.OpenIDCode):
    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return KEY

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": "test-key"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": ISSUER, "aud": [CLIENT_ID], "exp": int(time.time()) + 600}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return any(c.nonce == nonce for c in CODES.values())

    def generate_user_info(self, user: User, scope: str) -> dict[str, Any]:
        return {
            "sub": user.login,
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "groups": user.groups,
        }


SERVER = Server()
SERVER.register_token_generator("default", BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(24)))
SERVER.register_grant(CodeGrant, [OpenIDCode(require_nonce=True), CodeChallenge(required=True)])


def _login_form(request: Request, error: str = "") -> Response:
    action = "/authorize?" + urlencode(list(request.args.items(multi=True)))
    body = f"""<!doctype html><title>Test IdP</title><h1>Test identity provider</h1>
<p role="alert">{html.escape(error)}</p>
<form method="post" action="{html.escape(action)}">
<label for="login">IdP login</label><input id="login" name="login">
<label for="password">IdP password</label><input id="password" name="password" type="password">
<button type="submit">Sign in to the IdP</button></form>"""
    return Response(body, status=401 if error else 200, content_type="text/html")


def app(environ: dict[str, Any], start_response: Any) -> Any:
    request = Request(environ)
    response: Response
    if request.path == "/.well-known/openid-configuration":
        response = Response(
            json.dumps(
                {
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "scopes_supported": ["openid", "email", "profile", "groups"],
                }
            ),
            content_type="application/json",
        )
    elif request.path == "/jwks":
        response = Response(json.dumps({"keys": [KEY.as_dict(private=False)]}), content_type="application/json")
    elif request.path == "/authorize" and request.method == "GET":
        response = _login_form(request)
    elif request.path == "/authorize":
        user = USERS.get(request.form.get("login", ""))
        if user is None or not secrets.compare_digest(user.password, request.form.get("password", "")):
            response = _login_form(request, "wrong IdP login or password")
        else:
            response = SERVER.create_authorization_response(request, grant_user=user)
    elif request.path == "/token" and request.method == "POST":
        response = SERVER.create_token_response(request)
    else:
        response = Response("not found", status=404)
    return response(environ, start_response)


def main() -> None:
    global ISSUER
    port = int(sys.argv[1])
    ISSUER = f"http://127.0.0.1:{port}"
    for login, data in json.loads(sys.argv[2]).items():
        USERS[login] = User(login=login, **data)
    run_simple("127.0.0.1", port, app, threaded=True)


if __name__ == "__main__":
    main()
