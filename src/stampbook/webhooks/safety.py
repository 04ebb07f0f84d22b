"""Where webhooks may go: http(s) only, and never to the server's own network.

A webhook URL is chosen by an API client but fetched by the server, so an
unchecked one would let a client make the server post to its own private
network (SSRF). Private, loopback, link-local and other non-public addresses
are refused unless ``STAMPBOOK_WEBHOOK_ALLOW_PRIVATE=true``. Names are checked
when an endpoint is saved and again before every delivery, as DNS may change
in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from stampbook.kit.errors import Code, StampbookError

RESOLVE_TIMEOUT_SECONDS = 3.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL is not one the server may post to; the message says why."""


def parse_target(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; UnsafeUrl when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("the scheme must be http or https")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not allowed")
    return host, port or (443 if parts.scheme == "https" else 80)


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
    )
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = _literal(str(sockaddr[0]).split("%", 1)[0])
        if address is not None:
            found.append(address)
    return found


async def check_target(url: str, *, allow_private: bool, strict_dns: bool) -> None:
    """Raise UnsafeUrl unless ``url`` is http(s) and (unless allowed) public.

    ``strict_dns``: a name that does not resolve is refused (at delivery time,
    when we are about to connect); when saving an endpoint it is let through,
    as its DNS may simply not be set up yet — every delivery checks again.
    """
    host, port = parse_target(url)
    if allow_private:
        return
    literal = _literal(host)
    if literal is not None:
        if not is_public(literal):
            raise UnsafeUrl(f"{host} is not a public address")
        return
    try:
        addresses = await _resolve(host, port)
    except (OSError, TimeoutError) as exc:
        if strict_dns:
            raise UnsafeUrl(f"{host} does not resolve: {exc}") from exc
        return
    private = [str(address) for address in addresses if not is_public(address)]
    if private:
        raise UnsafeUrl(f"{host} resolves to a non-public address ({', '.join(private)})")
    if strict_dns and not addresses:
        raise UnsafeUrl(f"{host} does not resolve")


async def vet_endpoint_url(url: str, *, allow_private: bool) -> None:
    """Check a URL being saved as an endpoint; 2202 WEBHOOK_URL_REFUSED when unsafe."""
    try:
        await check_target(url, allow_private=allow_private, strict_dns=False)
    except UnsafeUrl as exc:
        raise StampbookError(Code.WEBHOOK_URL_REFUSED) from exc
