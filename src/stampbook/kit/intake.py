"""The intake of every HTTP request, before any route reads it.

For the API, in this order: the key is checked from the headers alone (a
request without a good key is refused 401 having sent its body for nothing,
and counted against its address's budget), then the body's size (a
``Content-Length`` over the cap is refused 413 unread; a streamed body is
read only up to the cap), and the body is labelled JSON whatever its
Content-Type says; the RateLimit headers the key's check computed are added
to whatever response the request gets. Elsewhere (the stamp page's forms)
only the size is capped.

A pure ASGI middleware: an accepted add or validate costs one pass over its
headers here, and its body is neither copied nor read twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stampbook.kit.arrival import arrived
from stampbook.kit.call import RATE_LIMIT_HEADERS_STATE
from stampbook.kit.envelope import error_response
from stampbook.kit.errors import Code, StampbookError
from stampbook.kit.i18n import negotiate

# Methods whose API requests carry no body to relabel (validate, list, delete…).
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
_JSON = (b"content-type", b"application/json")
PageRefusal = Callable[[Scope], Response]
# Checks a request's key from its scope and Authorization header, raising the
# refusal (stampbook.auth.admit, handed in by the app: the kit imports no feature).
Admit = Callable[[Scope, str], Awaitable[object]]


class Intake:
    """Admit API keys before bodies are read, and cap every request body.

    ``admit`` checks the key of each request under ``api_prefix``;
    ``page_refusal`` renders the 413 for requests outside it (the stamp page
    answers with a page, never the API's envelope).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        admit: Admit,
        api_prefix: str,
        max_body_bytes: int,
        max_form_bytes: int,
        page_refusal: PageRefusal,
    ) -> None:
        self.app = app
        self.admit = admit
        self.api_prefix = api_prefix
        self.max_body_bytes = max_body_bytes
        self.max_form_bytes = max_form_bytes
        self.page_refusal = page_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with arrived():
            await self._admit(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = scope["path"].startswith(self.api_prefix)
        relabel = api and scope["method"] not in _BODILESS
        authorization = ""
        length: int | None = 0
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() and length is not None else None
            elif name == b"transfer-encoding":
                length = None  # streamed: its size is known only by reading it
            elif name == b"content-type" and relabel:
                continue
            if relabel:
                headers.append((name, value))
        cap = self.max_body_bytes if api else self.max_form_bytes
        # A refusal sent while a big body is still unread closes the connection:
        # the client stops sending it, and the server stops reading it.
        unread = length is None or length > cap
        if api:
            try:
                await self.admit(scope, authorization)
            except StampbookError as refusal:
                await _refuse(scope, receive, send, refusal, close=unread)
                return
            rate_limit_headers = scope.get("state", {}).get(RATE_LIMIT_HEADERS_STATE)
            if rate_limit_headers:
                send = _adding(rate_limit_headers, send)
        if length is not None and length > cap:
            await self._too_large(scope, receive, send, api=api)
            return
        if length is None:
            try:
                body = await _read_at_most(receive, cap)
            except _ClientGone:
                return  # nobody left to answer, and half a body must not be acted on
            if body is None:
                await self._too_large(scope, receive, send, api=api)
                return
            receive = _replaying(body, receive)
        if relabel:
            headers.append(_JSON)
            # In place: the request middleware reads what the router leaves in
            # this very scope (the route template, kit/metrics.py).
            scope["headers"] = headers
        await self.app(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, *, api: bool) -> None:
        if api:
            await _refuse(scope, receive, send, StampbookError(Code.BODY_TOO_LARGE), close=True)
            return
        response = self.page_refusal(scope)
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def _adding(extra: dict[str, str], send: Send) -> Send:
    """``send`` that adds ``extra`` to the response's headers (those it lacks):
    the RateLimit headers of an admitted request, which the IETF draft asks
    for on every response, a route's refusal or error included."""
    encoded = [(name.lower().encode(), value.encode()) for name, value in extra.items()]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            raw = list(message.get("headers", []))
            present = {name.lower() for name, _ in raw}
            raw += [(name, value) for name, value in encoded if name not in present]
            message = {**message, "headers": raw}
        await send(message)

    return send_with_headers


async def _refuse(
    scope: Scope, receive: Receive, send: Send, refusal: StampbookError, *, close: bool
) -> None:
    """Answer an API request with the refusal's envelope, in the asked language."""
    response = error_response(refusal, negotiate(Headers(scope=scope).get("accept-language")))
    if close:
        response.headers["connection"] = "close"
    await response(scope, receive, send)


async def _read_at_most(receive: Receive, cap: int) -> bytes | None:
    """A streamed body read whole while it stays within ``cap`` bytes; None as soon
    as it goes over (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class _ClientGone(Exception):
    """The client disconnected before its body was whole."""


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the route the body already read, then defers to
    the server's (which reports the disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
