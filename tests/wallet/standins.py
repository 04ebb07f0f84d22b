"""Stand-ins for Apple's and Google's servers, real servers on 127.0.0.1.

``ApnsStandIn``: HTTP/2 over TLS (hypercorn, a certificate from ``trustme``),
recording every push; its answer per device token is scripted (a status, or
"stall": never answer). ``GoogleStandIn``: a plain HTTP server holding the
Wallet REST API's classes and objects and an OAuth token endpoint.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.servers import free_port

STALL = "stall"


@dataclass(frozen=True)
class Push:
    """One request the APNs stand-in received."""

    path: str
    http_version: str
    headers: dict[str, str]
    body: bytes

    @property
    def device_token(self) -> str:
        """The device token from ``/3/device/{token}``."""
        return self.path.rsplit("/", 1)[-1]


@dataclass
class ApnsStandIn:
    """A real HTTP/2 APNs stand-in; ``answers`` maps a device token to the
    statuses (or STALL) of its successive pushes (200 once they run out)."""

    directory: Path
    # Require a TLS client certificate issued by these CAs (certificate auth).
    client_ca: Path | None = None
    answers: dict[str, list[int | str]] = field(default_factory=dict)
    pushes: list[Push] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.authority = trustme.CA()
        self.port = free_port()
        self.ca_file = self.directory / "apns-ca.pem"
        self.authority.cert_pem.write_to_path(str(self.ca_file))
        issued = self.authority.issue_cert("127.0.0.1", "localhost")
        self._cert = self.directory / "apns-cert.pem"
        self._key = self.directory / "apns-key.pem"
        issued.private_key_pem.write_to_path(str(self._key))
        for index, blob in enumerate(issued.cert_chain_pems):
            blob.write_to_path(str(self._cert), append=index > 0)
        self._lock = threading.Lock()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        """Where it listens (``STAMPBOOK_APNS_URL``)."""
        return f"https://127.0.0.1:{self.port}"

    def pushes_to(self, token: str) -> list[Push]:
        """The pushes received so far for one device token."""
        with self._lock:
            return [push for push in self.pushes if push.device_token == token]

    async def _app(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        push = Push(
            path=scope["path"],
            http_version=scope["http_version"],
            headers={k.decode(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        with self._lock:
            self.pushes.append(push)
            script = self.answers.get(push.device_token, [])
            answer = script.pop(0) if script else 200
        if answer == STALL:
            await asyncio.sleep(3600)
        status = int(answer)
        payload = (
            b""
            if status == 200
            else orjson.dumps({"reason": "Unregistered" if status == 410 else "BadRequest"})
        )
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"apns-id", b"test")]}
        )
        await send({"type": "http.response.body", "body": payload})

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.certfile = str(self._cert)
        config.keyfile = str(self._key)
        config.alpn_protocols = ["h2"]
        if self.client_ca is not None:
            config.ca_certs = str(self.client_ca)
            config.verify_mode = ssl.CERT_REQUIRED
        config.loglevel = "WARNING"
        config.graceful_timeout = 0.1
        loop.run_until_complete(serve(self._app, config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]
        loop.close()

    def __enter__(self) -> ApnsStandIn:
        self._thread.start()
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the APNs stand-in did not start")

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class Call:
    """One request the Google stand-in received."""

    method: str
    path: str
    authorization: str | None
    body: Any


class GoogleStandIn:
    """The Wallet REST API (classes and objects in memory) and a token endpoint."""

    TOKEN = "test-access-token-1"

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.classes: dict[str, Any] = {}
        self.objects: dict[str, Any] = {}
        self.tokens_issued = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/token":
                    form = parse_qs(raw.decode())
                    standin.calls.append(Call("POST", "/token", None, form))
                    standin.tokens_issued += 1
                    self._answer(
                        200,
                        {"access_token": standin.TOKEN, "expires_in": 3600, "token_type": "Bearer"},
                    )
                    return
                body = orjson.loads(raw) if raw else None
                auth = self.headers.get("authorization")
                standin.calls.append(Call(self.command, self.path, auth, body))
                if auth != f"Bearer {standin.TOKEN}":
                    self._answer(401, {"error": "unauthenticated"})
                    return
                kind, _, object_id = self.path.removeprefix("/walletobjects/v1/").partition("/")
                store = standin.classes if kind == "loyaltyClass" else standin.objects
                if self.command == "POST":
                    if body["id"] in store:
                        self._answer(409, {"error": "exists"})
                        return
                    store[body["id"]] = body
                    self._answer(200, body)
                elif object_id not in store:
                    self._answer(404, {"error": "not found"})
                else:
                    store[object_id] = {**store[object_id], **body}
                    self._answer(200, store[object_id])

            do_POST = _handle
            do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def settings(self) -> dict[str, str]:
        """The API and token URL settings pointing here."""
        return {
            "google_api_url": f"{self.base}/walletobjects/v1",
            "google_token_url": f"{self.base}/token",
        }

    def __enter__(self) -> GoogleStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
