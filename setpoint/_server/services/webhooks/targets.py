"""Where webhooks may send: http(s) URLs whose every resolved address is public (SSRF guard).

The check runs when a webhook is saved and again before every attempt; the attempt then connects to the
address that was checked (the URL's host is kept for ``Host`` and TLS), so a name that resolves to a public
address at the check and to a private one at the connection (DNS rebinding) cannot reach the private one.
``SETPOINT_WEBHOOKS_ALLOW_PRIVATE=1`` lifts the address rule (a receiver on the same network).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from setpoint._server.services.errors import InvalidError

MAX_URL = 2000

Resolver = Callable[[str, int], list[str]]


class RefusedTargetError(InvalidError):
    """A webhook URL that is not allowed (the message says why and what to do)."""


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """Whether an IP address is a public unicast one (not private, loopback, link-local, multicast,
    reserved, unspecified, shared or documentation space; IPv4-mapped IPv6 judged by its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and (when private addresses are not allowed) the public addresses it
    resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def parse(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL; 422 saying what is wrong otherwise."""
    if len(url) > MAX_URL:
        raise RefusedTargetError(f"the webhook URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise RefusedTargetError(f"the webhook URL {url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}:" if scheme else "no scheme"
        raise RefusedTargetError(f"the webhook URL must start with http:// or https:// (it has {shown})")
    if not parts.hostname:
        raise RefusedTargetError(f"the webhook URL {url!r} has no host; give e.g. https://example.com/hooks")
    if any(c.isspace() for c in url.strip()):
        raise RefusedTargetError("the webhook URL must not contain spaces")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def check(url: str, *, allow_private: bool, resolve: Resolver | None = None) -> Target:
    """The URL checked: http(s), and unless ``allow_private`` every address its host resolves to is public.
    Raises :class:`RefusedTargetError` (422) naming the problem."""
    scheme, host, port = parse(url)
    if allow_private:
        return Target(url.strip(), scheme, host, port, ())
    try:
        addresses = [host] if _is_ip(host) else (resolve or _resolve)(host, port)
    except (OSError, UnicodeError) as exc:
        raise RefusedTargetError(f"the webhook host {host!r} does not resolve ({exc})") from None
    if not addresses:
        raise RefusedTargetError(f"the webhook host {host!r} does not resolve")
    private = [a for a in addresses if not is_public(a)]
    if private:
        raise RefusedTargetError(
            f"the webhook host {host!r} resolves to a private, loopback, link-local or reserved address "
            f"({', '.join(private)}); webhooks may only call public addresses unless the server runs with "
            "SETPOINT_WEBHOOKS_ALLOW_PRIVATE=1"
        )
    return Target(url.strip(), scheme, host, port, tuple(addresses))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
