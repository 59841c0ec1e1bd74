"""Where webhooks may go: http(s) URLs whose every address is public, unless the deployment
allows the host by name (DROPNET_WEBHOOK_ALLOWED_HOSTS).

Checked at submission (a 422 names `notify.url`) and again at every delivery attempt, since
DNS can change in between. A delivery resolves the host once, checks every address, and
connects to a checked address, so a second lookup (DNS rebinding) cannot swap it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.config import Settings

SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud instance-metadata endpoints that are not already link-local or private addresses.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"))

Resolver = Callable[[str, int], list[str]]
"""(host, port) -> the addresses the host resolves to."""


class UnsafeURL(ValueError):
    """A webhook URL refused: `reason` says why, `expected` what would be accepted."""

    def __init__(self, reason: str, expected: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expected = expected


@dataclass(frozen=True)
class WebhookTarget:
    """A parsed webhook URL: `path` includes the query string."""

    scheme: str
    host: str
    port: int
    path: str


def parse(url: str) -> WebhookTarget:
    """The URL's parts; UnsafeURL for another scheme, no host, credentials or a bad port."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"the URL is {len(url)} characters long",
                        f"at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise UnsafeURL(f"scheme {parts.scheme or '(none)'!r} is not allowed",
                        "an http:// or https:// URL")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host", "http(s)://host[:port]/path")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("the URL holds credentials", "a URL without user:password@")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise UnsafeURL("the URL's port is not a number in 1..65535",
                        "http(s)://host[:port]/path") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme=parts.scheme.lower(), host=parts.hostname.lower(), port=port,
                         path=path)


def refusal(address: IPAddress) -> str | None:
    """Why a webhook must not go to `address` (e.g. "a loopback address"), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped)
    checks = (("a cloud metadata address", address in METADATA_ADDRESSES),
              ("a loopback address", address.is_loopback),
              ("an unspecified address", address.is_unspecified),
              ("a link-local address", address.is_link_local),
              ("a multicast address", address.is_multicast),
              ("a private address", address.is_private),
              ("a reserved address", address.is_reserved),
              ("a non-public address", not address.is_global))
    return next((reason for reason, refused in checks if refused), None)


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """DROPNET_WEBHOOK_ALLOWED_HOSTS as lower-case host names (or address literals)."""
    return frozenset(host.strip().lower().strip("[]")
                     for host in settings.webhook_allowed_hosts.split(",") if host.strip())


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, each once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def checked_addresses(target: WebhookTarget, settings: Settings,
                      resolver: Resolver = system_resolver) -> list[str]:
    """The addresses to connect to for `target`, every one checked; UnsafeURL when the host
    does not resolve or any address is refused (an allowed host is not checked)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolver(target.host, target.port)
        except OSError as error:
            raise UnsafeURL(f"host {target.host!r} does not resolve ({error})",
                            "a host name that resolves to a public address") from None
        if not addresses:
            raise UnsafeURL(f"host {target.host!r} resolves to no address",
                            "a host name that resolves to a public address")
    if target.host in allowed_hosts(settings):
        return addresses
    for address in addresses:
        reason = refusal(ipaddress.ip_address(address))
        if reason is not None:
            shown = "" if literal is not None else f"{target.host!r} resolves to "
            raise UnsafeURL(f"{shown}{address}, {reason}",
                            "a public address, or a host listed in "
                            "DROPNET_WEBHOOK_ALLOWED_HOSTS")
    return addresses
