"""Who is on the other end of a request: the one place a client address is read.

Every throttle keyed by address (unauthenticated 401s, on-site password and
PIN guesses, dashboard logins) asks this function, so that what counts as a
client's address (the socket peer, or a forwarded address believed only from a
trusted proxy) is decided once.
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
