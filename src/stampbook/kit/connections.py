"""Connection guards for ``stampbook serve``: a cap on a request's head and a
deadline for reading a request.

uvicorn's httptools protocol (the fast one) limits neither: a client may send
megabytes of headers, or half a header line and then nothing, and keep a
connection (and its buffer) for ever. This subclass adds both, at the level
where bytes arrive, before anything is parsed into a request:

- a request line plus headers over ``max_head_bytes`` is answered 431 and the
  connection closed;
- a request not received whole (head and body) within ``read_timeout``
  seconds of the connection opening, or of its first byte on a kept-alive
  connection, has its connection closed. The API's bodies are a few KB, so a
  genuine client sends a whole request in milliseconds.

Idle kept-alive connections are closed by uvicorn's own ``timeout_keep_alive``.
A reverse proxy in front (nginx, a cloud load balancer) remains the
production answer to slow and abusive clients; these bound what reaches us
when there is none.
"""

from __future__ import annotations

import asyncio
import functools
from asyncio import TimerHandle
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from stampbook.config import Settings

_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 32\r\n"
    b"connection: close\r\n\r\n"
    b"Request header fields too large."
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head-size cap and a read deadline.

    uvicorn builds one per connection; ``stampbook serve`` hands it over with
    ``functools.partial`` binding the two limits (a partial pickles, so it
    reaches every worker process).
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_head_bytes: int,
        read_timeout: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = max_head_bytes
        self.read_timeout = read_timeout
        self.read_deadline: TimerHandle | None = None
        # Bytes received while a request's head is incomplete; None once it is.
        self.head_bytes: int | None = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the deadline: a connection that sends nothing is closed too."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; refuse the request if its head is still incomplete and
        already over the cap (checked after parsing, so that a body arriving in
        the same packet as its head never counts against the head)."""
        if self.head_bytes is not None:
            self.head_bytes += len(data)
        super().data_received(data)
        if (
            self.head_bytes is not None
            and self.head_bytes > self.max_head_bytes
            and not self.transport.is_closing()
        ):
            self.logger.warning("Request head over %d bytes refused.", self.max_head_bytes)
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

    def on_message_begin(self) -> None:
        """A request's first byte: its deadline starts (unless the connection's runs)."""
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        """The head is whole: no longer counted against the cap."""
        self.head_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is whole: its deadline ends; the next head is counted afresh."""
        self._disarm()
        self.head_bytes = 0
        super().on_message_complete()

    def _arm(self) -> None:
        if self.read_deadline is None:
            self.read_deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _too_slow(self) -> None:
        self.read_deadline = None
        if not self.transport.is_closing():
            self.logger.info("Connection closed: no whole request within %ss.", self.read_timeout)
            self.transport.close()


def connection_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.run`` options that bound connections and decide whom
    forwarded headers are believed from, for ``stampbook serve``."""
    # A partial is not a class, but uvicorn only calls it, and it pickles to
    # every worker process.
    protocol = functools.partial(
        GuardedHttpToolsProtocol,
        max_head_bytes=settings.max_header_bytes,
        read_timeout=settings.read_timeout_seconds,
    )
    return {
        "http": cast("type[asyncio.Protocol]", protocol),
        # The same cap, should uvicorn be run with h11 instead.
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_seconds,
        # The app believes forwarded headers from STAMPBOOK_TRUSTED_PROXIES only
        # (create_app); uvicorn's own would trust 127.0.0.1 unasked.
        "proxy_headers": False,
        # uvicorn's own 5 s made a busy 2-core machine kill and restart every
        # worker while it was still importing, for ever (bench/README.md).
        "timeout_worker_healthcheck": settings.worker_start_seconds,
    }
