"""What every HTTP request came to: one pure ASGI middleware, outermost, that
times each request and hands ``(scope, status, seconds)`` to its observers.

The access log is one observer (``AccessLog``); anything else that wants one
call per request (metrics: a counter and a histogram by method, route and
status) registers another on the same middleware with ``observe``, rather
than wrapping the app again: each wrapper costs every request a ``send``
closure and a stack frame.

The access log replaces uvicorn's, which went through ``logging`` and
structlog's processor chain per line: 5–10 % of a worker's CPU under load
(bench/README.md). A line here is formatted once, with a cached timestamp,
and written straight to the stream: a few microseconds. It carries method,
path (with its query; a page token redacted, ``kit/logs.py``), status,
duration in milliseconds, the client address and the worker's pid, as JSON
or as text like the rest of the log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stampbook.kit.logs import SECRET_PATH_PREFIXES, redact_paths

# An observer of one finished request: its scope, its status (500 when the
# app raised before answering) and its duration in seconds. Called on the
# event loop after the response went out: it must not block, nor raise.
Observer = Callable[[Scope, int, float], None]
ACCESS_LOGGER = "stampbook.access"


class Observed:
    """Times every HTTP request and tells each of ``observers`` how it ended.

    The list is the app's (``app.state.request_observers``, see ``observe``):
    an observer appended to it later is called from then on.
    """

    def __init__(self, app: ASGIApp, *, observers: list[Observer]) -> None:
        self.app = app
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.observers:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        pending = True

        def report() -> None:
            nonlocal pending
            pending = False
            seconds = time.perf_counter() - started
            for observer in self.observers:
                observer(scope, status, seconds)

        async def send_status(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body" and not message.get("more_body", False):
                # Before the last byte goes out: a client that has its answer
                # finds the request's line already written.
                report()
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if pending:  # the app raised, or never finished its answer
                report()


def observe(state: object, observer: Observer) -> None:
    """Register ``observer`` for every request of the app whose ``app.state`` is
    ``state`` (the list ``Observed`` reads, created by the app factory)."""
    observers: list[Observer] = getattr(state, "request_observers")  # noqa: B009
    observers.append(observer)


class AccessLog:
    """An ``Observer`` writing one line per request to ``stream`` (stderr)."""

    def __init__(self, *, json: bool, stream: TextIO | None = None) -> None:
        self.json = json
        self.stream = stream
        self._second = -1
        self._stamp = ""
        self.pid = os.getpid()  # which worker answered

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((now - second) * 1e6):06d}Z"

    def __call__(self, scope: Scope, status: int, seconds: float) -> None:
        """Write the line of one request."""
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if query:
            path = f"{path}?{query.decode('latin-1')}"
        if any(prefix in path for prefix in SECRET_PATH_PREFIXES):
            path = redact_paths(path)
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else "-"
        method: str = scope.get("method", "")
        duration_ms = round(seconds * 1000, 2)
        if self.json:
            line = orjson.dumps(
                {
                    "timestamp": self._timestamp(),
                    "level": "info",
                    "logger": ACCESS_LOGGER,
                    "event": "request",
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "client": address,
                    "pid": self.pid,
                }
            ).decode()
        else:
            line = (
                f"{self._timestamp()} [info     ] {method} {path} {status} "
                f"{duration_ms:.2f} ms [{ACCESS_LOGGER}] client={address} pid={self.pid}"
            )
        (self.stream or sys.stderr).write(line + "\n")
