"""The webhook receiver of ``make bench``: a loopback sink that answers 204.

Stampbook is measured with its dispatcher on (the default), so every add's
outbox message is really delivered; it must go to a receiver on this machine,
never to a public address. ``bench/run.py`` serves this ASGI app with uvicorn
(one worker, no access log) on 127.0.0.1 and subscribes one endpoint per
account to it. ``GET /count`` answers how many deliveries it has received.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

received = 0


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Drain the body, count POSTs, answer 204 (``GET /count``: the count)."""
    global received
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    if scope["method"] == "GET" and scope["path"] == "/count":
        body = str(received).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    received += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
