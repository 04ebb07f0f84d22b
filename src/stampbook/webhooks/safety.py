"""Where webhooks may go: http(s) only, and never to the server's own network.

A webhook URL is chosen by an API client but fetched by the server, so an
unchecked one would let a client make the server post to its own private
network (SSRF). Private, loopback, link-local and other non-public addresses
are refused unless ``STAMPBOOK_WEBHOOK_ALLOW_PRIVATE=true``.

``vet`` resolves the name **once** and returns the addresses it approved; the
dispatcher then connects to exactly those (``pinning``), never resolving the
name again. Checking one lookup and connecting after another would let a name
answer a public address to the check and 127.0.0.1 to the connection (DNS
rebinding). Names are vetted when an endpoint is saved (one that does not
resolve is refused) and again at every delivery, as DNS may change in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from stampbook.kit.errors import Code, StampbookError

RESOLVE_TIMEOUT_SECONDS = 3.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL is not one the server may post to; the message says why."""


class UnresolvedHost(UnsafeUrl):
    """The URL's host name has no address (now)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted URL: its host as the connection layer names it (lower case,
    IDNA, IPv6 without brackets), its port, and every address allowed for it."""

    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def parse_target(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; UnsafeUrl when it is not one.

    Parsed by httpx, the client that connects, so the host vetted here is
    byte for byte the one its connection layer asks to connect to.
    """
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("the scheme must be http or https")
    host = parts.raw_host.decode("ascii")
    if not host:
        raise UnsafeUrl("the URL has no host")
    if parts.userinfo:
        raise UnsafeUrl("credentials in the URL are not allowed")
    return host, parts.port or (443 if parts.scheme == "https" else 80)


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
        if address is not None and address not in found:
            found.append(address)
    return found


async def vet(url: str, *, allow_private: bool) -> Target:
    """Resolve ``url``'s host once and approve its addresses.

    UnsafeUrl unless it is http(s) and every address is public (any address
    when ``allow_private``); UnresolvedHost when the name has no address.
    """
    host, port = parse_target(url)
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await _resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise UnresolvedHost(f"{host} does not resolve: {exc or 'timed out'}") from exc
        if not addresses:
            raise UnresolvedHost(f"{host} does not resolve")
    if not allow_private:
        # All of them, not just the first: the connection may try each in turn.
        private = [str(address) for address in addresses if not is_public(address)]
        if private:
            raise UnsafeUrl(f"{host} is not a public address ({', '.join(private)})")
    return Target(host=host, port=port, addresses=tuple(addresses))


async def vet_endpoint_url(url: str, *, allow_private: bool) -> None:
    """Check a URL being saved as an endpoint: 2204 WEBHOOK_HOST_UNRESOLVED when
    its name has no address, 2202 WEBHOOK_URL_REFUSED when it is unsafe."""
    try:
        await vet(url, allow_private=allow_private)
    except UnresolvedHost as exc:
        raise StampbookError(Code.WEBHOOK_HOST_UNRESOLVED) from exc
    except UnsafeUrl as exc:
        raise StampbookError(Code.WEBHOOK_URL_REFUSED) from exc
