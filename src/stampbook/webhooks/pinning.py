"""Connect to exactly the addresses that were vetted, never to a fresh lookup.

The dispatcher vets an endpoint's URL (``safety.vet``: one DNS lookup, every
address checked) and then posts inside ``pinned(target)``. Its HTTP client's
connection layer (``PinnedBackend``) ignores DNS altogether: asked to connect
to a host, it connects to the addresses pinned for that host and port in the
current task, or refuses when there are none. The URL keeps its host name, so
the Host header, the TLS server name (SNI) and the certificate's host-name
check are all made against the name, as they would be without pinning.

A connection kept alive by the pool was opened to an address vetted when it
was opened; reusing it for a later delivery that vetted the name again is
therefore still a vetted connection.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

import httpcore
import httpx

from stampbook.webhooks.safety import Target

# Set by ``pinned`` around one delivery; asyncio gives each delivery task its
# own copy, so concurrent deliveries never see each other's pins.
_pin: ContextVar[Target | None] = ContextVar("stampbook_webhook_pin", default=None)


@contextlib.contextmanager
def pinned(target: Target) -> Iterator[None]:
    """Within the block, connections to ``target``'s host go to its vetted addresses."""
    token = _pin.set(target)
    try:
        yield
    finally:
        _pin.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to pinned addresses."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first pinned address of ``host``:``port`` that answers."""
        target = _pin.get()
        if target is None or (target.host, target.port) != (host, port):
            raise httpcore.ConnectError(f"{host}:{port} was not vetted for this delivery")
        failure: Exception | None = None
        for address in target.addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # a Target always has an address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: webhooks go over TCP to a vetted address."""
        raise httpcore.ConnectError("webhooks are not sent to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        """As the inner backend sleeps (httpcore uses it between retries)."""
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, on a connection pool whose backend is ``PinnedBackend``.

    httpx offers no public way to hand its pool a network backend (a pull
    request for one, encode/httpx#3749, is still open), so the pool that
    ``AsyncHTTPTransport`` builds is replaced by the same pool with the
    backend; request mapping, streaming and error mapping stay httpx's. The
    pinning tests fail if a new httpx changes this.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(inner),
        )
