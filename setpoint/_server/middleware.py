"""ASGI middleware: the request body size limit and the input guard (``services.input_limits``)."""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(HTTPException):
    """Raised inside ``receive`` when a streamed (chunked) body passes the limit.

    An HTTPException, so that FastAPI's body parsing lets it through (it turns any other error into a 400)
    and the app answers 413 even when a handler reads the body itself.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {max_bytes} bytes; send a smaller body")


class BodySizeLimit:
    """Answer 413 when a request body is larger than ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"request body is larger than the limit of {self.max_bytes} bytes; send a smaller body"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._reject(send)


def _error_body(path: str, loc: str, message: str) -> bytes:
    """The error in the shape of the API the path belongs to (OFREP, the LaunchDarkly-style segments API, or
    Setpoint's own ``{"detail", "errors"}``)."""
    if path.startswith(("/ofrep/", "/v1/ofrep/")):
        return json.dumps({"errorCode": "INVALID_CONTEXT", "errorDetails": message}).encode()
    if path.startswith("/api/"):
        return json.dumps({"code": "invalid_request", "message": message}).encode()
    return json.dumps({"detail": message, "errors": [{"loc": loc, "msg": message}]}).encode()


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class InputGuard:
    """Apply ``services.input_limits`` to every request before any route sees it: the URL path, query
    string and form bodies may not hold NUL characters, and a JSON body may not nest deeper than the limit or hold
    unstorable text (422 naming the location). A body that is not JSON at all is left to the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def _reject(self, send: Send, path: str, loc: str, message: str, status: int = 422) -> None:
        body = _error_body(path, loc, message)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from setpoint._server.services import input_limits

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if "\x00" in path:
            await self._reject(send, path, "path", "the URL path contains a NUL character (%00); remove it", 400)
            return
        query: bytes = scope.get("query_string", b"")
        if b"\x00" in query or b"%00" in query.lower():
            await self._reject(send, path, "query", "the query string contains a NUL character (%00); remove it", 400)
            return
        content_type = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
        is_form = content_type.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"
        if not (is_form or _is_json(content_type)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected before the body was complete
                await self.app(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if is_form:
            if b"%00" in raw or b"\x00" in raw:
                await self._reject(send, path, "form", "a form field contains a NUL character (%00); remove it", 400)
                return
        elif raw.strip():
            try:
                input_limits.loads(raw, "body")
            except input_limits.InputLimitError as exc:
                loc = exc.errors[0]["loc"] if exc.errors else "body"
                # The LaunchDarkly-style API answers every invalid request with 400.
                await self._reject(send, path, loc, exc.message, 400 if path.startswith("/api/") else 422)
                return
            except ValueError:
                pass  # not JSON: the route says so in its own words
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class AllowHeader:
    """A 405 answer's ``Allow`` header lists the methods the OpenAPI document gives the path (Starlette names
    only those of the first route matching it). A path that is a template's instance and also a fixed path
    (``/v1/variables/bulk/`` vs ``/v1/variables/{name}/``) is the fixed one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._paths: list[tuple[str, re.Pattern[str], list[str]]] | None = None

    def _allowed(self, scope: Scope) -> list[str]:
        if self._paths is None:
            document = scope["app"].openapi() if hasattr(scope.get("app"), "openapi") else {}
            paths = []
            for template, operations in document.get("paths", {}).items():
                regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
                paths.append((template, regex, sorted(m.upper() for m in operations if m != "parameters")))
            self._paths = paths
        path = scope.get("path", "")
        exact = [methods for template, _, methods in self._paths if template == path]
        if exact:
            return exact[0]
        return sorted({m for _, regex, methods in self._paths if regex.match(path) for m in methods})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self._allowed(scope)
                if methods:
                    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
                    headers.append((b"allow", ", ".join(methods).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
