"""Who is on the other end of a request: the one place a client address is read.

Every throttle keyed by address (unauthenticated 401s, on-site password and
PIN guesses, dashboard logins) asks this function, so that what counts as a
client's address is decided once: the socket peer, or, when the peer is one
of ``STAMPBOOK_TRUSTED_PROXIES``, the address that proxy forwarded.

Forwarded headers are believed by uvicorn's ``ProxyHeadersMiddleware``, which
``create_app`` puts in front of everything when proxies are trusted: it
rewrites the scope's client (from ``X-Forwarded-For``, the nearest address
not itself a trusted proxy) and scheme (``X-Forwarded-Proto``) only for a
trusted peer, so this function reads the scope and nothing else.
"""

from __future__ import annotations

from starlette.types import Scope

UNKNOWN_ADDRESS = "unknown"


def client_address(scope: Scope) -> str:
    """The client's address for ``scope`` (an ASGI HTTP scope), or ``"unknown"``."""
    client = scope.get("client")
    if not client:
        return UNKNOWN_ADDRESS
    return str(client[0])
